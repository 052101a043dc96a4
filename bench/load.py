"""Uploads under load on a real server: throughput, latency, and not one acknowledged clip lost.

.venv/bin/python bench/load.py [--seconds 60] [--clients 50] [--kill [--kill-after S]]
.venv/bin/python bench/load.py --read [--seconds 30] [--clients 20] [--datasets 10]

Starts `waketrain serve --no-worker` on a free loopback port over a temp registry; the clients
upload the shared `wake/` recordings round-robin until `--seconds` pass. With `--kill`, the
server gets SIGKILL mid-load (`--kill-after`, default half of `--seconds`) and is started again
on the same data dir. Then every clip the server answered 201 for must be in the database with
its file and the sha256 of the bytes sent, and every file in clips/ must decode and have a row
(start-up recovery removes what a killed upload left). Exits 1 if anything is lost.

With `--read`, the dashboard's load instead: every recording is uploaded once, spread over
`--datasets` datasets, then the clients ask `GET /datasets` until `--seconds` pass; the table
gives requests per second, latency and the server's CPU time per request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import soundfile as sf

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASET = "load"
PASSWORD = "load-bench-password"
TEMP_PREFIX = ".tmp-"  # store/files.py writes clips through such temp files


@dataclass(frozen=True)
class Recording:
    name: str
    data: bytes
    sha256: str


@dataclass
class LoadResult:
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)  # of acknowledged uploads
    acknowledged: dict[str, str] = field(default_factory=dict)  # clip id -> sha256 sent
    refused: dict[int, int] = field(default_factory=dict)  # status -> count
    transport_errors: int = 0
    cut_by_kill: int = 0  # requests in flight (or started) after the kill

    @property
    def errors(self) -> int:
        return sum(self.refused.values()) + self.transport_errors


@dataclass
class Server:
    """`waketrain serve --no-worker` on a free loopback port, in its own process group."""

    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "serve.log"

    def start(self) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WAKETRAIN_", "DEPLOY_"))}
        env.update(
            WAKETRAIN_DATA_DIR=str(self.data_dir),
            WAKETRAIN_ADMIN_PASSWORD=PASSWORD,
            WAKETRAIN_LOG_LEVEL="warning",
            # 50 clients share one user; this measures ingest, not the per-user upload budget.
            WAKETRAIN_UPLOADS_PER_MINUTE="0",
        )
        command = [sys.executable, "-m", "waketrain", "serve", "--no-worker"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its analysis child can be found (and ended) with it
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError("server did not become healthy within 90 s")

    def kill(self) -> None:
        """SIGKILL, as in a power cut or an OOM kill: no shutdown code runs."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self._end_group()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._end_group()

    def _end_group(self) -> None:
        # The group is this server's own session: its analysis child, nothing else.
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def token(self) -> str:
        response = httpx.post(
            f"{self.url}/auth/token", json={"username": "admin", "password": PASSWORD}
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_recordings(min_seconds: float = 0.3, max_seconds: float = 30.0) -> list[Recording]:
    """Every shared wake-word clip the service accepts, in memory, with its sha256."""
    recordings = []
    for path in sorted((SHARED / "wake").rglob("*.flac")):
        if min_seconds <= sf.info(str(path)).duration <= max_seconds:
            data = path.read_bytes()
            recordings.append(Recording(path.name, data, hashlib.sha256(data).hexdigest()))
    if not recordings:
        raise SystemExit(f"no recordings under {SHARED / 'wake'}")
    return recordings


async def run_load(
    server: Server,
    token: str,
    recordings: list[Recording],
    clients: int,
    seconds: float,
    kill_after: float | None,
) -> LoadResult:
    """`clients` concurrent uploaders until `seconds` pass (or the server is killed)."""
    result = LoadResult()
    turn = itertools.count()
    killed = asyncio.Event()
    start = time.monotonic()
    deadline = start + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    metadata = {"metadata": json.dumps({"label": "positive", "source": "upload"})}

    async def client(http: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline and not killed.is_set():
            recording = recordings[next(turn) % len(recordings)]
            files = {"file": (recording.name, recording.data, "audio/flac")}
            sent = time.monotonic()
            try:
                response = await http.post(
                    f"/datasets/{DATASET}/recordings", files=files, data=metadata
                )
            except httpx.TransportError:
                if killed.is_set():
                    result.cut_by_kill += 1
                    return
                result.transport_errors += 1
                await asyncio.sleep(0.1)  # a server that went away: do not spin
                continue
            if response.status_code == 201:
                result.latencies_ms.append((time.monotonic() - sent) * 1000)
                result.acknowledged[response.json()["id"]] = recording.sha256
            else:
                result.refused[response.status_code] = (
                    result.refused.get(response.status_code, 0) + 1
                )

    async def killer() -> None:
        if kill_after is None:
            return
        await asyncio.sleep(kill_after)
        killed.set()
        await asyncio.to_thread(server.kill)

    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, limits=limits, timeout=60
    ) as http:
        await asyncio.gather(killer(), *(client(http) for _ in range(clients)))
    # Up to the last answer (uploads started before the deadline still count), or the kill.
    result.seconds = kill_after if kill_after is not None else time.monotonic() - start
    return result


@dataclass
class Integrity:
    acknowledged: int = 0
    present: int = 0  # acknowledged, with a row, a decodable file and the right sha256
    missing_row: list[str] = field(default_factory=list)
    missing_file: list[str] = field(default_factory=list)
    wrong_sha256: list[str] = field(default_factory=list)
    orphan_files: list[str] = field(default_factory=list)  # in clips/ without a row
    temp_files: list[str] = field(default_factory=list)
    undecodable: list[str] = field(default_factory=list)
    committed_unacknowledged: int = 0  # rows whose 201 never reached the client

    @property
    def lost(self) -> int:
        return len(self.missing_row) + len(self.missing_file) + len(self.wrong_sha256)

    @property
    def ok(self) -> bool:
        problems = self.orphan_files + self.temp_files + self.undecodable
        return self.lost == 0 and not problems


def registry_files(data_dir: Path) -> tuple[dict[str, str], list[Path]]:
    """(clip id -> sha256 of every row of the dataset, every file in its clips folder)."""
    database = f"file:{data_dir / 'waketrain.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(database, uri=True)) as db:
        rows = dict(db.execute("SELECT id, sha256 FROM clips WHERE dataset_id = ?", (DATASET,)))
    clips_dir = data_dir / "datasets" / DATASET / "clips"
    return rows, sorted(clips_dir.iterdir()) if clips_dir.is_dir() else []


def check_integrity(data_dir: Path, acknowledged: dict[str, str]) -> Integrity:
    rows, files = registry_files(data_dir)
    report = Integrity(acknowledged=len(acknowledged))
    by_id = {}
    for path in files:
        if path.name.startswith(TEMP_PREFIX):
            report.temp_files.append(path.name)
            continue
        by_id[path.stem] = path
        if path.stem not in rows:
            report.orphan_files.append(path.name)
        try:
            info = sf.info(str(path))
            if (info.samplerate, info.channels, info.frames > 0) != (16_000, 1, True):
                report.undecodable.append(path.name)
        except (sf.LibsndfileError, RuntimeError):
            report.undecodable.append(path.name)
    for clip_id, sha256 in acknowledged.items():
        if clip_id not in rows:
            report.missing_row.append(clip_id)
        elif clip_id not in by_id:
            report.missing_file.append(clip_id)
        elif rows[clip_id] != sha256:
            report.wrong_sha256.append(clip_id)
        else:
            report.present += 1
    report.committed_unacknowledged = len(set(rows) - set(acknowledged))
    return report


def left_by_kill(data_dir: Path) -> tuple[int, int]:
    """(temp files, clip files without a row) right after the kill, before any restart."""
    rows, files = registry_files(data_dir)
    temp = sum(f.name.startswith(TEMP_PREFIX) for f in files)
    orphans = sum(not f.name.startswith(TEMP_PREFIX) and f.stem not in rows for f in files)
    return temp, orphans


@dataclass
class ReadResult:
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    cpu_seconds: float = 0.0  # the server process's, user and system
    client_cpu_seconds: float = 0.0  # this process's: what the load itself takes


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fill_datasets(server: Server, token: str, recordings: list[Recording], datasets: int) -> int:
    """Every recording once, round-robin over `datasets` datasets; returns the clips stored."""
    headers = {"Authorization": f"Bearer {token}"}
    stored = 0
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
        ids = [DATASET] + [f"{DATASET}-{n}" for n in range(1, datasets)]
        for dataset_id in ids[1:]:
            http.post("/datasets", json={"id": dataset_id, "phrase": "computer"}).raise_for_status()
        metadata = {"metadata": json.dumps({"label": "positive", "source": "upload"})}
        for n, recording in enumerate(recordings):
            files = {"file": (recording.name, recording.data, "audio/flac")}
            response = http.post(f"/datasets/{ids[n % datasets]}/recordings", files=files,
                                 data=metadata)  # fmt: skip
            stored += response.status_code == 201
    return stored


def wait_for_analysis(server: Server, token: str, timeout: float = 600) -> None:
    """Until every clip's quality is measured: the dashboard at rest, not mid-analysis."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = httpx.get(f"{server.url}/datasets", headers=headers, timeout=60).json()
        if all(d["quality"]["pending_analysis"] == 0 for d in listed):
            return
        time.sleep(2)
    raise SystemExit(f"quality analysis still running after {timeout:.0f} s")


async def run_reads(server: Server, token: str, clients: int, seconds: float) -> ReadResult:
    """`clients` concurrent dashboards asking GET /datasets until `seconds` pass.

    Each is one keep-alive HTTP/1.1 connection driven by hand on asyncio streams: the load
    generator shares the machine's cores with the server, and a full HTTP client library
    would take more of them than the server it measures.
    """
    assert server.process is not None
    result = ReadResult()
    request = (
        f"GET /datasets HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
    start, cpu_before = time.monotonic(), cpu_seconds(server.process.pid)
    client_cpu_before = time.process_time()
    deadline = start + seconds

    async def dashboard() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            while time.monotonic() < deadline:
                sent = time.monotonic()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                if head.split(b" ", 2)[1] == b"200":
                    result.latencies_ms.append((time.monotonic() - sent) * 1000)
                else:
                    result.errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(dashboard() for _ in range(clients)))
    result.seconds = time.monotonic() - start
    result.cpu_seconds = cpu_seconds(server.process.pid) - cpu_before
    result.client_cpu_seconds = time.process_time() - client_cpu_before
    return result


def start_with_dataset(server: Server) -> str:
    """Start the server and create the dataset the load goes to; returns a bearer token."""
    server.start()
    token = server.token()
    created = httpx.post(
        f"{server.url}/datasets",
        json={"id": DATASET, "phrase": "computer"},
        headers={"Authorization": f"Bearer {token}"},
    )
    created.raise_for_status()
    return token


def read_bench(args: argparse.Namespace, recordings: list[Recording]) -> None:
    with tempfile.TemporaryDirectory(prefix="waketrain-load-") as tmp:
        server = Server(Path(tmp) / "data")
        try:
            token = start_with_dataset(server)
            clips = fill_datasets(server, token, recordings, args.datasets)
            wait_for_analysis(server, token)
            result = asyncio.run(run_reads(server, token, args.clients, args.seconds))
        finally:
            server.stop()
    answered = len(result.latencies_ms)
    print(
        f"GET /datasets: {args.datasets} datasets holding {clips} clips, {args.clients} "
        f"clients, `waketrain serve --no-worker` on 127.0.0.1, {os.cpu_count()} CPU cores\n"
    )
    print("| clients | seconds | requests | requests/s | p50 ms | p95 ms | p99 ms | server CPU "
          "ms/request | load generator CPU ms/request | errors |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {args.clients} | {result.seconds:.1f} | {answered} | {answered / result.seconds:.0f} "
        f"| {percentile(result.latencies_ms, 50):.0f} | {percentile(result.latencies_ms, 95):.0f} "
        f"| {percentile(result.latencies_ms, 99):.0f} "
        f"| {1000 * result.cpu_seconds / max(answered, 1):.2f} "
        f"| {1000 * result.client_cpu_seconds / max(answered, 1):.2f} | {result.errors} |"
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="Length of the load.")
    parser.add_argument("--clients", type=int, default=50, help="Concurrent uploaders.")
    parser.add_argument("--kill", action="store_true", help="SIGKILL the server mid-load.")
    parser.add_argument("--kill-after", type=float, help="Seconds into the load (default: half).")
    parser.add_argument("--read", action="store_true", help="Measure GET /datasets instead.")
    parser.add_argument("--datasets", type=int, default=10, help="With --read: datasets filled.")
    args = parser.parse_args()
    if args.read:
        read_bench(args, load_recordings())
        return
    kill_after = (args.kill_after or args.seconds / 2) if args.kill else None
    if kill_after is not None and not 0 < kill_after < args.seconds:
        parser.error("--kill-after must fall inside the load (0 < S < --seconds)")

    recordings = load_recordings()
    with tempfile.TemporaryDirectory(prefix="waketrain-load-") as tmp:
        server = Server(Path(tmp) / "data")
        left = None
        try:
            token = start_with_dataset(server)
            result = asyncio.run(
                run_load(server, token, recordings, args.clients, args.seconds, kill_after)
            )
            if args.kill:
                left = left_by_kill(server.data_dir)
                server.start()  # on the same data dir: start-up recovery runs first
                check_server_agrees(server)
        finally:
            server.stop()
        integrity = check_integrity(server.data_dir, result.acknowledged)
        print_report(args, recordings, result, integrity, left, kill_after)
    sys.exit(0 if integrity.ok else 1)


def check_server_agrees(server: Server) -> None:
    """The restarted server serves, and lists exactly the rows the database holds."""
    listed = httpx.get(
        f"{server.url}/datasets/{DATASET}/recordings",
        params={"deleted": "include", "limit": 1},
        headers={"Authorization": f"Bearer {server.token()}"},
    )
    listed.raise_for_status()
    rows, _ = registry_files(server.data_dir)
    if listed.json()["total"] != len(rows):
        raise SystemExit(f"the API lists {listed.json()['total']} clips, the database {len(rows)}")


def print_report(
    args: argparse.Namespace,
    recordings: list[Recording],
    result: LoadResult,
    integrity: Integrity,
    left: tuple[int, int] | None,
    kill_after: float | None,
) -> None:
    acknowledged = len(result.acknowledged)
    refused = ", ".join(f"{n}x {status}" for status, n in sorted(result.refused.items()))
    phase = f"killed at {kill_after:.0f} s" if kill_after is not None else "steady"
    print(
        f"{len(recordings)} shared wake/ recordings round-robin, {args.clients} clients, "
        f"`waketrain serve --no-worker` on 127.0.0.1 (quality analysis running beside it), "
        f"{os.cpu_count()} CPU cores\n"
    )
    print(
        "| phase | clients | seconds | uploads acknowledged | uploads/s | p50 ms | p99 ms "
        "| errors | lost clips |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {phase} | {args.clients} | {result.seconds:.1f} | {acknowledged} "
        f"| {acknowledged / result.seconds:.1f} | {percentile(result.latencies_ms, 50):.0f} "
        f"| {percentile(result.latencies_ms, 99):.0f} | {result.errors} | {integrity.lost} |"
    )
    print()
    print("| check | result |")
    print("| --- | --- |")
    print(
        f"| acknowledged clips with row, file and sha256 | {integrity.present} / {acknowledged} |"
    )
    print(
        f"| missing row / missing file / wrong sha256 | {len(integrity.missing_row)} / "
        f"{len(integrity.missing_file)} / {len(integrity.wrong_sha256)} |"
    )
    print(f"| files in clips/ without a row | {len(integrity.orphan_files)} |")
    print(f"| temp files in clips/ | {len(integrity.temp_files)} |")
    print(f"| clip files that do not decode as 16 kHz mono | {len(integrity.undecodable)} |")
    if refused or result.transport_errors:
        print(f"| errors: refused / transport | {refused or 0} / {result.transport_errors} |")
    if left is not None:
        print(f"| requests cut by the kill | {result.cut_by_kill} |")
        print(
            f"| left by the kill, before restart: temp files / files without a row | "
            f"{left[0]} / {left[1]} |"
        )
        print(
            f"| committed, but the 201 never arrived (kept) | "
            f"{integrity.committed_unacknowledged} |"
        )
    if not integrity.ok:
        print("\nFAILED:", integrity, file=sys.stderr)


if __name__ == "__main__":
    main()
