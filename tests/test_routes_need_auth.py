"""Every route in the app's own route table refuses a caller without credentials.

The list comes from `app.routes` (walked with FastAPI's `iter_route_contexts`, which also
enters included routers), so a route added later is covered without editing this file. The
few doors that are public on purpose are named below with the reason, and a stale name fails.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.convertors import FloatConvertor, IntegerConvertor, UUIDConvertor
from starlette.routing import Mount, WebSocketRoute
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import Service
from waketrain.api.app import create_app
from waketrain.api.headers import SECURITY_HEADERS
from waketrain.api.routers.ui import BuiltAssets
from waketrain.settings import Settings

PUBLIC = {
    ("GET", "/healthz"): "liveness probe for the container runtime",
    ("GET", "/"): "the web UI's page: it draws the login form; its calls all need a session",
    ("GET", "/assets/{path}"): "the web UI's hashed bundles, needed to draw the login form",
}
# The doors that take a password: for them, "no credentials" means a wrong password.
CREDENTIAL_DOORS = {("POST", "/auth/login"), ("POST", "/auth/token")}
WRONG_PASSWORD = {"username": "admin", "password": "not-the-password"}
# Plausible values by parameter name; ids not named here get a UUID, other names a word.
PATH_VALUES = {"dataset_id": "tars-default", "name": "metadata.json", "path": "index.js"}
AUTH_CLOSE_CODE = 4401  # status_stream accepts, then closes with this and the reason


@dataclass(frozen=True)
class Door:
    method: str  # an HTTP method, or "WEBSOCKET"
    template: str  # e.g. /recordings/{clip_id}
    path: str  # the template with plausible values filled in

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.template)


def plausible_value(name: str, convertor: object) -> str:
    if isinstance(convertor, IntegerConvertor):
        return "1"
    if isinstance(convertor, FloatConvertor):
        return "1.5"
    if isinstance(convertor, UUIDConvertor) or (name.endswith("_id") and name not in PATH_VALUES):
        return str(uuid.uuid4())
    return PATH_VALUES.get(name, "example")


def route_table() -> list[Door]:
    """Every HTTP method and WebSocket of the app as `create_app` builds it."""
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(Settings(data_dir=Path(data_dir)))
        doors = []
        for route in iter_route_contexts(app.routes):
            template = route.path_format
            assert template is not None, f"route without a path: {route!r}"
            path = template  # path_format names parameters without their convertors
            for name, convertor in route.param_convertors.items():
                path = path.replace(f"{{{name}}}", plausible_value(name, convertor))
            assert route.path_regex.match(path), f"{path} does not reach {template}"
            if isinstance(route.original_route, WebSocketRoute):  # FastAPI's too
                doors.append(Door("WEBSOCKET", template, path))
            elif isinstance(route.original_route, Mount):
                doors.append(Door("GET", template, path))
            else:
                doors += [Door(method, template, path) for method in sorted(route.methods or ())]
    return doors


ROUTES = route_table()
HTTP_DOORS = [
    d
    for d in ROUTES
    if d.method != "WEBSOCKET" and d.key not in PUBLIC and d.key not in CREDENTIAL_DOORS
]
WEBSOCKETS = [d for d in ROUTES if d.method == "WEBSOCKET" and d.key not in PUBLIC]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """No training worker: these requests never get as far as a job."""
    svc = Service(tmp_path_factory.mktemp("registry"), args=("--no-worker",)).start()
    yield svc
    svc.stop()


def test_route_table_is_complete_and_the_exemptions_exist() -> None:
    keys = {d.key for d in ROUTES}
    assert len(HTTP_DOORS) >= 30 and len(WEBSOCKETS) >= 1
    assert ("POST", "/datasets/{dataset_id}/recordings") in keys
    assert ("WEBSOCKET", "/status") in keys
    stale = (set(PUBLIC) | CREDENTIAL_DOORS) - keys
    assert not stale, f"exemptions for routes that no longer exist: {stale}"


@pytest.mark.parametrize("door", HTTP_DOORS, ids=lambda d: f"{d.method} {d.template}")
def test_http_route_without_credentials_is_401(service: Service, door: Door) -> None:
    url = service.url + door.path
    anonymous = httpx.request(door.method, url)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in anonymous.json()["detail"]
    forged_token = httpx.request(door.method, url, headers={"Authorization": "Bearer forged"})
    assert forged_token.status_code == 401, forged_token.text
    forged_cookie = httpx.request(door.method, url, cookies={"waketrain_session": "forged"})
    assert forged_cookie.status_code == 401, forged_cookie.text
    for name, value in SECURITY_HEADERS.items():  # refusals too: every response has them
        assert anonymous.headers[name] == value, name


@pytest.mark.parametrize("door", WEBSOCKETS, ids=lambda d: d.template)
@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer forged"}], ids=["none", "forged"]
)
def test_websocket_without_credentials_is_closed_with_the_reason(
    service: Service, door: Door, headers: dict[str, str]
) -> None:
    url = service.url.replace("http://", "ws://") + door.path
    with pytest.raises(ConnectionClosed) as caught, connect(url, additional_headers=headers) as ws:
        ws.recv(timeout=5)  # nothing may arrive before the close
    close = caught.value.rcvd
    assert close is not None and close.code == AUTH_CLOSE_CODE
    expected = "token is not valid" if headers else "Authentication required"
    assert expected in close.reason


@pytest.mark.parametrize("door", sorted(CREDENTIAL_DOORS), ids=lambda d: f"{d[0]} {d[1]}")
def test_password_door_with_a_wrong_password_is_401(
    service: Service, door: tuple[str, str]
) -> None:
    method, path = door
    response = httpx.request(method, service.url + path, json=WRONG_PASSWORD)
    assert response.status_code == 401, response.text
    assert "set-cookie" not in response.headers


def test_public_doors_serve_only_health_and_the_ui_shell(service: Service) -> None:
    assert httpx.get(service.url + "/healthz").status_code == 200
    page = httpx.get(service.url + "/")  # 503 with a hint when the UI is not built
    assert page.status_code in (200, 503) and page.headers["content-type"].startswith("text/html")
    assert httpx.get(service.url + "/assets/no-such-bundle.js").status_code == 404
    for response in (page, httpx.get(service.url + "/healthz")):
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"


def test_assets_answer_404_with_what_to_do_while_the_ui_is_not_built(tmp_path: Path) -> None:
    app = FastAPI()
    app.mount("/assets", BuiltAssets(directory=tmp_path / "not-built", check_dir=False))

    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ui") as client:
            return await client.get("/assets/index.js")

    response = asyncio.run(fetch())
    assert response.status_code == 404 and "make run" in response.text
