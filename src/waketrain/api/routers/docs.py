"""OpenAPI schema and Swagger UI, behind login, with the UI's assets served locally.

FastAPI's default docs page loads Swagger UI from a CDN; a Jetson in a workshop has no
internet, so the assets come from the fastapi-offline wheel instead, whose Swagger UI 5 reads
the OpenAPI 3.1 document FastAPI writes (Swagger UI 4 refuses its version field). The
browser's login session is accepted here as on every other route.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from waketrain.api.deps import current_principal
from waketrain.store.errors import NotFound

router = APIRouter(include_in_schema=False, dependencies=[Depends(current_principal)])
ASSETS = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}


def _assets_folder() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


@router.get("/openapi.json")
def openapi_schema(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="waketrain API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon.png",
    )


@router.get("/docs/assets/{name}")
def swagger_asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise NotFound(f"No docs asset {name!r}.")
    return FileResponse(_assets_folder() / name)
