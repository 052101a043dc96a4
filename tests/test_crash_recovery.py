"""A server killed mid-upload leaves no half-written clip, and labels.json agrees after restart;
a server killed -9 leaves no process of its own behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import soundfile as sf

from tests.conftest import Service, clip_files, create_dataset, db_env, shared, upload
from tests.test_captures import DATASET, board_token, capture_files
from tests.test_captures import upload as push


def registry_state(service: Service, dataset_id: str) -> tuple[set[str], set[str], set[str]]:
    """(clip ids in the database, clip files on disk, clip ids in labels.json)."""
    with service.client() as api:
        page = api.get(
            f"/datasets/{dataset_id}/recordings", params={"deleted": "include", "limit": 1000}
        ).json()
    labels = json.loads((service.data_dir / "datasets" / dataset_id / "labels.json").read_text())[
        "clips"
    ]
    files = {f.name for f in clip_files(service.data_dir, dataset_id)}
    return {item["id"] for item in page["items"]}, files, set(labels)


def start_half_sent_upload(service: Service, token: str, content: bytes) -> socket.socket:
    """Begin an upload whose body stops halfway, so the server is mid-request when killed."""
    boundary = "waketrain-crash-test"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'
            f'{{"label": "positive"}}\r\n--{boundary}\r\nContent-Disposition: form-data; '
            f'name="file"; filename="half.flac"\r\n\r\n'
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /datasets/crash/recordings HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", service.port))
    sock.sendall(head + body[: len(body) // 2])
    return sock


def test_kill_during_uploads_then_restart_is_consistent(tmp_path: Path, db_url: str | None) -> None:
    service = Service(tmp_path / "registry", env=db_env(db_url)).start()
    files = sorted(shared("wake/computer").glob("*.flac"))[:60]
    acknowledged: list[str] = []
    with service.client() as api:
        create_dataset(api, "crash")
        token = api.headers["Authorization"].split()[1]

        def keep_uploading(paths: list[Path]) -> None:
            for path in paths:
                try:
                    response = upload(api, "crash", path.read_bytes(), path.name)
                except httpx.TransportError:
                    return  # the server died under us
                if response.status_code == 201:
                    acknowledged.append(response.json()["id"])

        half = start_half_sent_upload(service, token, files[0].read_bytes())
        threads = [threading.Thread(target=keep_uploading, args=(files[i::4],)) for i in range(4)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
        service.kill()  # SIGKILL while uploads are in flight
        for thread in threads:
            thread.join()
        half.close()
    assert 12 <= len(acknowledged) < len(files)

    restarted = Service(service.data_dir, env=service.env).start()
    try:
        in_db, on_disk, in_labels = registry_state(restarted, "crash")
        assert all(name.endswith(".wav") and not name.startswith(".") for name in on_disk)
        assert {name.removesuffix(".wav") for name in on_disk} == in_db == in_labels
        assert set(acknowledged) <= in_db  # nothing acknowledged was lost
        for name in on_disk:
            info = sf.info(str(service.data_dir / "datasets" / "crash" / "clips" / name))
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    finally:
        restarted.stop()


def test_restart_removes_leftovers_of_an_interrupted_write(
    tmp_path: Path, db_url: str | None
) -> None:
    """The two crash windows of an upload: mid-write (temp file) and before the commit."""
    service = Service(tmp_path / "registry", env=db_env(db_url)).start()
    with service.client() as api:
        create_dataset(api, "leftovers")
        path = sorted(shared("wake/computer").glob("*.flac"))[0]
        kept = upload(api, "leftovers", path.read_bytes(), path.name).json()["id"]
    service.stop()

    clips = service.data_dir / "datasets" / "leftovers" / "clips"
    real = (clips / f"{kept}.wav").read_bytes()
    (clips / ".tmp-abc123.wav").write_bytes(real[:1000])  # killed during the write
    orphan = clips / "0f6c1f4e-5b8e-4e55-9a38-8f1b6f1d2a11.wav"
    orphan.write_bytes(real)  # killed after the rename, before the database commit
    labels = service.data_dir / "datasets" / "leftovers" / "labels.json"
    labels.write_text("{ half a json")  # an editor or a crash mangled the projection

    restarted = Service(service.data_dir, env=service.env).start()
    try:
        in_db, on_disk, in_labels = registry_state(restarted, "leftovers")
        assert in_db == in_labels == {kept} and on_disk == {f"{kept}.wav"}
    finally:
        restarted.stop()


def test_a_kill_during_capture_pushes_leaves_no_stray_file(
    tmp_path: Path, db_url: str | None
) -> None:
    """Captures pushed by the board while the server dies: after restart every capture file
    has its row, and a file the board was never told about (or a half-written one) is gone;
    the board pushes those again."""
    service = Service(tmp_path / "registry", args=("--no-worker",), env=db_env(db_url)).start()
    token = board_token(service)
    pushes = [capture_files(clip=i) for i in range(40)]
    acknowledged: list[str] = []

    def keep_pushing(batch: list[tuple[bytes, str, str]]) -> None:
        for wav, sidecar, _ in batch:
            try:
                response = push(service, token, DATASET, wav, sidecar)
            except httpx.TransportError:
                return
            if response.status_code == 201:
                acknowledged.append(response.json()["id"])

    threads = [threading.Thread(target=keep_pushing, args=(pushes[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    service.kill()
    for thread in threads:
        thread.join()
    assert 8 <= len(acknowledged) < len(pushes)

    captures = service.data_dir / "datasets" / DATASET / "captures"
    (captures / ".tmp-half.wav").write_bytes(pushes[0][0][:500])  # killed mid-write
    never_told = captures / f"{pushes[-1][2]}.wav"
    never_told.write_bytes(pushes[-1][0])  # killed after the write, before the commit
    restarted = Service(service.data_dir, args=("--no-worker",), env=service.env).start()
    try:
        with restarted.client() as api:
            rows = api.get(f"/datasets/{DATASET}/captures", params={"limit": 500}).json()
        stored = {item["id"] for item in rows["items"]}
        on_disk = {path.name for path in captures.iterdir()}
        assert on_disk == {f"{capture_id}.wav" for capture_id in stored}
        assert set(acknowledged) <= stored
    finally:
        restarted.stop()


def descendants(pid: int) -> dict[int, str]:
    """Every process below `pid` (children of each of its threads), with its command line."""
    found: dict[int, str] = {}
    parents = [pid]
    while parents:
        for task in Path(f"/proc/{parents.pop()}/task").glob("*"):
            with contextlib.suppress(OSError):
                for child in map(int, (task / "children").read_text().split()):
                    found[child] = command_line(child)
                    parents.append(child)
    return found


def command_line(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def is_running(pid: int) -> bool:
    """Not gone, and not a zombie that only waits for its new parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_killed_serve_leaves_no_process_behind(tmp_path: Path) -> None:
    """The embedded worker, the quality analysis pool and its resource tracker die with it."""
    service = Service(tmp_path / "registry").start()
    assert service.process is not None
    try:
        with service.client() as api:
            create_dataset(api, "orphans")
            path = sorted(shared("wake/computer").glob("*.flac"))[0]
            clip_id = upload(api, "orphans", path.read_bytes(), path.name).json()["id"]
            deadline = time.monotonic() + 60
            # Once the clip is measured, the analysis pool's process is running.
            while api.get(f"/recordings/{clip_id}").json()["analyzed_at"] is None:
                assert time.monotonic() < deadline, "the clip was never analyzed"
                time.sleep(0.1)
        children = descendants(service.process.pid)
    finally:
        service.kill()
    kinds = ("waketrain worker", "spawn_main", "resource_tracker")
    assert all(any(kind in line for line in children.values()) for kind in kinds), children
    deadline = time.monotonic() + 10
    while (left := [pid for pid in children if is_running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:  # leave nothing to a later test either
        os.kill(pid, signal.SIGKILL)
    assert not left, {pid: children[pid] for pid in left}
