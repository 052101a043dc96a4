"""The built web UI: index.html at `/`, hashed bundles under `/assets`.

The page and its scripts load before login (the UI shows the login form); every API route
the UI calls still requires a session.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

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


def mount_assets(app: FastAPI) -> None:
    app.mount("/assets", StaticFiles(directory=STATIC_DIR / "assets", check_dir=False), "assets")
