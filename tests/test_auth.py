"""Authentication from day one: every route but /healthz needs credentials."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import (
    ADMIN_PASSWORD,
    Service,
    read_answer,
    shared,
    start_partial_upload,
)

# The two doors that take a password (every other route: tests/test_routes_need_auth.py).
CREDENTIAL_ROUTES = {"/auth/login", "/auth/token"}
CSRF = {"X-Requested-With": "waketrain"}
WRONG = {"username": "admin", "password": "guess"}
RIGHT = {"username": "admin", "password": ADMIN_PASSWORD}
MB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants."""
    total, pending = 0, [pid]
    while pending:
        proc = Path(f"/proc/{pending.pop()}")
        try:
            status = (proc / "status").read_text()
            for task in (proc / "task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:  # ended meanwhile
            continue
        rss = [line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")]
        total += int(rss[0]) * 1024 if rss else 0
    return total


@dataclass
class MemoryWatch:
    before: int
    peak: int


@contextmanager
def watching_memory(service: Service) -> Iterator[MemoryWatch]:
    """Samples the service's resident memory every few milliseconds while the block runs."""
    assert service.process is not None
    pid = service.process.pid
    watch = MemoryWatch(before=rss_bytes(pid), peak=0)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            watch.peak = max(watch.peak, rss_bytes(pid))
            done.wait(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield watch
    finally:
        done.set()
        sampler.join()


def login_from(
    service: Service, source: str, body: dict[str, str], **headers: str
) -> httpx.Response:
    """POST /auth/token from loopback address `source` (all of 127/8 reaches the service)."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=120) as client:
        return client.post(service.url + "/auth/token", json=body, headers=headers)


def at_once(service: Service, sources: list[str]) -> list[httpx.Response]:
    """A wrong login from each source address, all sent at the same moment."""
    start = threading.Barrier(len(sources))

    def attempt(source: str) -> httpx.Response:
        start.wait()
        return login_from(service, source, WRONG)

    with ThreadPoolExecutor(max_workers=len(sources)) as pool:
        return list(pool.map(attempt, sources))


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


def test_a_refused_address_may_log_in_with_the_right_password_once_the_window_frees_a_try(
    tmp_path: Path,
) -> None:
    env = {"WAKETRAIN_LOGIN_FAILURES_PER_MINUTE": "3", "WAKETRAIN_LOGIN_WINDOW_SECONDS": "12"}
    service = Service(tmp_path / "data", args=("--no-worker",), env=env).start()
    try:
        codes = [httpx.post(service.url + "/auth/token", json=WRONG).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        refused = httpx.post(service.url + "/auth/login", json=RIGHT)
        assert refused.status_code == 429 and "at most 3 in 12 s" in refused.json()["detail"]
        retry_after = int(refused.headers["Retry-After"])
        assert 0 < retry_after <= 4  # one try comes back every 12 / 3 s
        time.sleep(retry_after)
        assert httpx.post(service.url + "/auth/login", json=RIGHT).status_code == 200
        # The right password spent nothing: the freed try is still there for a typo.
        assert httpx.post(service.url + "/auth/token", json=WRONG).status_code == 401
    finally:
        service.stop()


def test_a_burst_of_wrong_logins_gets_the_budget_then_429_in_bounded_memory(
    tmp_path: Path,
) -> None:
    # A long window, so that no try comes back while a slow machine answers the burst.
    env = {"WAKETRAIN_LOGIN_WINDOW_SECONDS": "600"}
    service = Service(tmp_path / "data", args=("--no-worker",), env=env).start()
    try:
        with watching_memory(service) as memory:
            answers = at_once(service, ["127.0.0.2"] * 40)
        codes = [answer.status_code for answer in answers]
        assert codes.count(401) == 10 and codes.count(429) == 30
        limited = next(answer for answer in answers if answer.status_code == 429)
        assert int(limited.headers["Retry-After"]) > 0
        assert "at most 10 in 600 s" in limited.json()["detail"]
        # Each argon2 check takes 64 MiB: all ten at once would add 640 MiB.
        assert memory.peak < 600 * MB and memory.peak - memory.before < 300 * MB
    finally:
        service.stop()


def test_logins_from_many_addresses_at_once_queue_for_a_few_checks_or_get_503(
    tmp_path: Path,
) -> None:
    service = Service(tmp_path / "data", args=("--no-worker",)).start()
    try:
        sources = [f"127.0.0.{n}" for n in range(10, 50)]  # each within its own budget
        with watching_memory(service) as memory:
            answers = at_once(service, sources)
        assert {answer.status_code for answer in answers} <= {401, 503}
        for busy in (answer for answer in answers if answer.status_code == 503):
            assert "too many passwords at once" in busy.json()["detail"]
            assert int(busy.headers["Retry-After"]) > 0
        assert memory.peak < 600 * MB and memory.peak - memory.before < 300 * MB
        # Checks that were refused as busy are not counted against their address.
        assert login_from(service, sources[0], RIGHT).status_code == 200
    finally:
        service.stop()


def test_x_forwarded_for_names_the_client_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    env = {"WAKETRAIN_LOGIN_FAILURES_PER_MINUTE": "1", "WAKETRAIN_TRUSTED_PROXIES": "127.0.0.1"}
    service = Service(tmp_path / "data", args=("--no-worker",), env=env).start()
    try:

        def forwarded(proxy: str, client: str) -> int:
            return login_from(service, proxy, WRONG, **{"X-Forwarded-For": client}).status_code

        # Through the trusted proxy, each client has its own budget of one failure.
        assert forwarded("127.0.0.1", "10.0.0.1") == 401
        assert forwarded("127.0.0.1", "10.0.0.2") == 401
        assert forwarded("127.0.0.1", "10.0.0.1") == 429
        # From any other peer the header is ignored: both tries count against the peer.
        assert forwarded("127.0.0.2", "10.0.0.3") == 401
        assert forwarded("127.0.0.2", "10.0.0.4") == 429
    finally:
        service.stop()


def test_an_anonymous_upload_is_refused_before_its_body_is_read(service: Service) -> None:
    path = "/datasets/tars-default/recordings"
    refusals = [({}, "Authentication required"), ({"Authorization": "Bearer x"}, "not valid")]
    for credentials, reason in refusals:
        # Declares 5 MB, sends 1 kB: the answer can only come before the body.
        with start_partial_upload(service, path, 5_000_000, credentials) as sock:
            status, body = read_answer(sock)
        assert status == 401 and reason in body.decode(), body
    answer = httpx.post(service.url + "/auth/token", json=WRONG)
    assert answer.status_code == 401 and "Wrong username or password" in answer.text


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
