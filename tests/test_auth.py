"""Authentication from day one: every route but /healthz needs credentials."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import ADMIN_PASSWORD, Service, shared

# The two doors that take a password (every other route: tests/test_routes_need_auth.py).
CREDENTIAL_ROUTES = {"/auth/login", "/auth/token"}
CSRF = {"X-Requested-With": "waketrain"}


def test_healthz_is_public(service: Service) -> None:
    assert httpx.get(service.url + "/healthz").json()["status"] == "ok"


def test_wrong_password_is_401_for_both_credential_routes(service: Service) -> None:
    for route in CREDENTIAL_ROUTES:
        response = httpx.post(service.url + route, json={"username": "admin", "password": "x"})
        assert response.status_code == 401 and "Wrong username or password" in response.text


def test_browser_login_sets_a_session_cookie_that_logout_revokes(service: Service) -> None:
    with httpx.Client(base_url=service.url) as browser:
        login = browser.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert login.status_code == 200 and login.json()["username"] == "admin"
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert browser.get("/datasets").status_code == 200
        # A cross-site form carries the cookie but cannot add the header: refused, 403.
        forged = browser.post("/auth/logout")
        assert forged.status_code == 403 and "X-Requested-With" in forged.json()["detail"]
        assert browser.post("/auth/logout", headers=CSRF).status_code == 204
        stale = httpx.get(
            service.url + "/datasets",
            cookies={"waketrain_session": login.cookies["waketrain_session"]},
        )
        assert stale.status_code == 401


def test_websocket_without_credentials_is_refused(service: Service) -> None:
    url = service.url.replace("http", "ws") + "/status"
    with pytest.raises(ConnectionClosed) as caught, connect(url) as ws:
        ws.recv(timeout=5)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 4401
    assert "Authentication required" in caught.value.rcvd.reason


def test_failed_logins_from_one_address_are_slowed_down(tmp_path: Path) -> None:
    env = {"WAKETRAIN_LOGIN_FAILURES_PER_MINUTE": "3"}
    service = Service(tmp_path / "data", args=("--no-worker",), env=env).start()
    try:
        wrong = {"username": "admin", "password": "guess"}
        codes = [httpx.post(service.url + "/auth/token", json=wrong).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        right = {"username": "admin", "password": ADMIN_PASSWORD}
        refused = httpx.post(service.url + "/auth/login", json=right)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        assert "at most 3 a minute" in refused.json()["detail"]
    finally:
        service.stop()


def test_uploads_beyond_the_users_budget_get_429_and_store_nothing(tmp_path: Path) -> None:
    env = {"WAKETRAIN_UPLOADS_PER_MINUTE": "2"}
    service = Service(tmp_path / "data", args=("--no-worker",), env=env).start()
    try:
        clip = sorted(shared("wake/computer").glob("*.flac"))[0].read_bytes()
        with service.client() as client:
            codes = [
                client.post(
                    "/datasets/tars-default/recordings",
                    files={"file": ("a.flac", clip)},
                    data={"metadata": '{"label": "positive"}'},
                )
                for _ in range(3)
            ]
            assert [r.status_code for r in codes] == [201, 201, 429]
            assert "at most 2 a minute" in codes[2].json()["detail"]
            assert int(codes[2].headers["Retry-After"]) > 0
            listed = client.get("/datasets/tars-default/recordings").json()
        assert listed["total"] == 2
        clips = list((tmp_path / "data" / "datasets" / "tars-default" / "clips").glob("*"))
        assert len(clips) == 2
    finally:
        service.stop()
