"""The built web UI: index.html at `/`, hashed bundles under `/assets`.

The page and its scripts load before login (the UI shows the login form); every API route
the UI calls still requires a session.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>waketrain</title>
<p>The web UI is not built. Run <code>make run</code> (or <code>make ui</code>), which builds
<code>web/</code> into <code>src/waketrain/static/</code>. The API is up: see
<a href="/docs">/docs</a>.</p>"""

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> Response:
    page = STATIC_DIR / "index.html"
    if not page.is_file():
        return HTMLResponse(NOT_BUILT, status_code=503)
    # Bundles have content hashes in their names; the page that names them must not be cached.
    return FileResponse(page, headers={"Cache-Control": "no-cache"})


class BuiltAssets(StaticFiles):
    """The UI's bundles; while the UI is not built, 404 with what to do (not a 500)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.directory is None or not Path(self.directory).is_dir():
            missing = PlainTextResponse(
                "The web UI is not built: run `make run` (or `make ui`).", status_code=404
            )
            await missing(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def mount_assets(app: FastAPI) -> None:
    app.mount("/assets", BuiltAssets(directory=STATIC_DIR / "assets", check_dir=False), "assets")
