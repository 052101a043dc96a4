"""Fixtures that build real things: a real `waketrain serve` process over a real registry."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.postgres import PostgresServer
from waketrain.settings import Settings
from waketrain.store import datasets
from waketrain.store.clips import ClipMetadata, import_directory, import_files
from waketrain.store.registry import Registry
from waketrain.store.startup import start_registry
from waketrain.training.config import TrainConfig, apply_overrides
from waketrain.training.pipeline import TrainResult, train

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OWW_FEATURE_MODELS = SHARED_DATA.parent / "models" / "openwakeword"
ADMIN_PASSWORD = "test-admin-password"

# A shell without job control starts background commands with Ctrl-C (SIGINT) ignored, and an
# ignored signal stays ignored across exec: the tests that press Ctrl-C on a CLI child would
# then see it run on. A handled signal is reset to its default in a child, so handle it here.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def shared(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.fail(f"{path} is missing: tests read real recordings from ../shared/data")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAKETRAIN_", "DEPLOY_"))}
    env.update(
        WAKETRAIN_DATA_DIR=str(data_dir),
        WAKETRAIN_ADMIN_PASSWORD=ADMIN_PASSWORD,
        WAKETRAIN_LOG_LEVEL="warning",
    )
    env.update(extra)
    return env


def run_cli(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`waketrain ...` as an operator runs it, against `data_dir` (with `env` set too)."""
    return subprocess.run(
        [sys.executable, "-m", "waketrain", *args],
        env=service_env(data_dir, **(env or {})),
        capture_output=True,
        text=True,
        timeout=600,
    )


@contextmanager
def running(command: list[str], **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """A child that is killed if still alive when the test leaves, its pipes closed and reaped,
    so a failing test leaves no process or open pipe behind to fail a later test."""
    with subprocess.Popen(command, **popen) as process:
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session; each test that wants it gets its own database."""
    server = PostgresServer(port=free_port()).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str | None:
    """The registry's database, once each way: None is the SQLite file in the data dir."""
    if request.param == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


def db_env(db_url: str | None) -> dict[str, str]:
    """The environment that points a `waketrain` process at `db_url`."""
    return {"WAKETRAIN_DB_URL": db_url} if db_url else {}


@dataclass
class Service:
    """A `waketrain serve` process on a free loopback port."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-serve.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Service:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "waketrain", "serve", "--port", str(self.port), *self.args],
                env=service_env(self.data_dir, **self.env),
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited: {self.log_path.read_text()}")
            status = self.health().get("status")
            # With its embedded worker, the service is up once that worker is alive too.
            if status == "ok" or (status == "degraded" and "--no-worker" in self.args):
                return self
            time.sleep(0.2)
        raise RuntimeError(f"service did not become healthy within 60 s: {self.health()}")

    def health(self) -> dict[str, Any]:
        """What /healthz says; empty while nothing answers."""
        try:
            response = httpx.get(f"{self.url}/healthz", timeout=1)
        except httpx.TransportError:
            return {}
        return dict(response.json()) if response.status_code == 200 else {}

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run, as in a power cut or OOM kill."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def token(self) -> str:
        response = httpx.post(
            f"{self.url}/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token()}"}, timeout=60
        )


@dataclass
class Worker:
    """A `waketrain worker` process over the same registry."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        log = (self.data_dir.parent / f"{self.data_dir.name}-worker.log").open("ab")
        with log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "waketrain", "worker"],
                env=service_env(self.data_dir, **self.env),
                stdout=log,
                stderr=log,
            )
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


# A tiny oww_head job: trained once per session, read by test_oww_head and test_detector.
TINY_HEAD = {
    "backend": "oww_head",
    "epochs": 6,
    "batch_size": 128,
    "head.positive_variants": 2,
    "head.negative_variants": 1,
    "synth.positives": 30,
    "synth.confusables": 30,
    "synth.speech": 10,
}


def import_subset(registry: Registry, dataset_id: str, folder: str, label: str, n: int) -> None:
    files = sorted(shared(folder).rglob("*.flac"))[:n]
    import_files(registry, files, dataset_id, ClipMetadata(label=label), "t")


def computer_registry(data_dir: Path, negatives: dict[str, int]) -> Registry:
    """Dataset "computer": the first 60 "computer" clips, the first n clips of each negative
    folder, and room tone as noise."""
    registry = start_registry(Settings(data_dir=data_dir, admin_password="x")).registry
    datasets.create_dataset(registry, datasets.DatasetCreate(id="computer", phrase="computer"), "t")
    import_subset(registry, "computer", "wake/computer", "positive", 60)
    for folder, n in negatives.items():
        import_subset(registry, "computer", folder, "negative", n)
    import_directory(
        registry, shared("noise/room_tone"), "computer", ClipMetadata(label="noise"), "t"
    )
    return registry


@pytest.fixture(scope="session")
def oww_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The "computer" set with snowboy and not-wake-words negatives."""
    negatives = {"wake/snowboy": 45, "speech/not_wake_words": 20}
    registry = computer_registry(tmp_path_factory.mktemp("oww-registry"), negatives)
    yield registry
    registry.close()


@pytest.fixture(scope="session")
def oww_job(oww_registry: Registry) -> TrainResult:
    config = apply_overrides(TrainConfig(), TINY_HEAD)
    return train(oww_registry, "computer", config, rir_dirs=[shared("rir")])


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One running service per test module; tests create their own datasets."""
    svc = Service(tmp_path_factory.mktemp("registry")).start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def api(service: Service) -> Iterator[httpx.Client]:
    with service.client() as client:
        yield client


def create_dataset(client: httpx.Client, dataset_id: str, phrase: str = "computer") -> None:
    response = client.post("/datasets", json={"id": dataset_id, "phrase": phrase})
    assert response.status_code == 201, response.text


def upload(
    client: httpx.Client,
    dataset_id: str,
    content: bytes,
    filename: str,
    label: str = "positive",
    speaker: str | None = None,
) -> httpx.Response:
    metadata = {"label": label} | ({"speaker": speaker} if speaker else {})
    import json

    return client.post(
        f"/datasets/{dataset_id}/recordings",
        files={"file": (filename, content, "application/octet-stream")},
        data={"metadata": json.dumps(metadata)},
    )


def start_partial_upload(
    service: Service, path: str, declared_bytes: int, headers: dict[str, str] | None = None
) -> socket.socket:
    """A raw connection that has sent a multipart upload's headers and the start of its body,
    declaring `declared_bytes`, and sends no more: the rest is the caller's to send or not."""
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{service.port}",
        "Content-Type: multipart/form-data; boundary=waketrain-test",
        f"Content-Length: {declared_bytes}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    part = (
        b'--waketrain-test\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    )
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=60)
    sock.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + part + b"\0" * 1024)
    return sock


def read_answer(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body of the answer on a raw connection (one that names its length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer: {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split()[1]), body


def clip_files(data_dir: Path, dataset_id: str) -> list[Path]:
    """Everything in the dataset's clips folder, temp files included."""
    folder = data_dir / "datasets" / dataset_id / "clips"
    return sorted(folder.iterdir()) if folder.exists() else []
