"""Captures from the board on the service side: scoped upload, review queue, retention."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.board import Board
from tests.conftest import Service, run_cli, service_env, shared
from waketrain.audio.decode import read_clip
from waketrain.settings import Settings
from waketrain.store.captures import (
    expire_captures,
    list_captures,
    parse_sidecar,
    receive_capture,
    review_capture,
)
from waketrain.store.clips import ClipMetadata, import_files
from waketrain.store.datasets import DatasetCreate, create_dataset
from waketrain.store.startup import start_registry
from waketrain.training.config import TrainConfig, apply_overrides
from waketrain.training.negative_bank import NegativeBank
from waketrain.training.pipeline import train

DATASET = "tars-default"


def capture_files(
    kind: str = "wake", clip: int = 0, folder: str = "wake/computer"
) -> tuple[bytes, str, str]:
    """(WAV bytes, sidecar JSON, capture id) as the board writes them, from a real clip."""
    audio = read_clip(str(sorted(shared(folder).rglob("*.flac"))[clip]))
    wav = io.BytesIO()
    sf.write(wav, audio, 16_000, format="WAV", subtype="PCM_16")
    capture_id = uuid.uuid4().hex
    sidecar = {
        "capture_id": capture_id, "kind": kind, "model_id": "tars-default-1234abcd",
        "threshold": 0.9, "peak_score": 0.95 if kind == "wake" else 0.7,
        "scores": [0.1, 0.5, 0.95, 0.4], "hop_seconds": 0.08,
        "captured_at": datetime.now(timezone.utc).isoformat(), "board": "tars-pi",
    }  # fmt: skip
    return wav.getvalue(), json.dumps(sidecar), capture_id


def upload(service: Service, token: str, dataset: str, wav: bytes, sidecar: str) -> httpx.Response:
    return httpx.post(
        f"{service.url}/datasets/{dataset}/captures",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("c.wav", wav)},
        data={"metadata": sidecar},
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(tmp_path_factory.mktemp("captures") / "data", args=("--no-worker",))
    yield service.start()
    service.stop()


def board_token(service: Service, dataset: str = DATASET, *extra: str) -> str:
    args = ("token", "create", "--captures-for", dataset, *extra)
    result = run_cli(service.data_dir, *args, env=service.env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_board_token_adds_captures_once_and_can_do_nothing_else(service: Service) -> None:
    token = board_token(service)
    wav, sidecar, capture_id = capture_files()
    first = upload(service, token, DATASET, wav, sidecar)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "unreviewed" and first.json()["kind"] == "wake"
    again = upload(service, token, DATASET, wav, sidecar)  # the board retried: no duplicate
    assert again.status_code == 200 and again.json()["id"] == capture_id
    with service.client() as client:
        client.post("/datasets", json={"id": "other", "phrase": "hey other"}).raise_for_status()
        listed = client.get(f"/datasets/{DATASET}/captures").json()
        assert [c["id"] for c in listed["items"]].count(capture_id) == 1
    other = upload(service, token, "other", *capture_files()[:2])
    assert other.status_code == 403 and "only add captures to dataset" in other.json()["detail"]
    snooping = httpx.get(f"{service.url}/datasets", headers={"Authorization": f"Bearer {token}"})
    assert snooping.status_code == 403


def test_an_expired_board_token_is_refused(service: Service) -> None:
    token = board_token(service, DATASET, "--days", "0.00001")  # under a second
    time.sleep(1.2)
    response = upload(service, token, DATASET, *capture_files()[:2])
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_bad_sidecars_are_refused_with_what_is_expected(service: Service) -> None:
    token = board_token(service)
    wav, sidecar, _ = capture_files()
    broken = json.loads(sidecar) | {"capture_id": "../../etc"}
    response = upload(service, token, DATASET, wav, json.dumps(broken))
    assert response.status_code == 422 and "capture_id" in response.json()["detail"]
    assert upload(service, token, DATASET, b"not audio", sidecar).status_code == 415


def test_review_turns_captures_into_clips_and_discards_audio(service: Service) -> None:
    token = board_token(service)
    ids = {}
    for verdict, kind in (("positive", "near_miss"), ("negative", "wake"), ("discard", "wake")):
        wav, sidecar, capture_id = capture_files(kind, clip=len(ids) + 5)
        assert upload(service, token, DATASET, wav, sidecar).status_code == 201
        ids[verdict] = capture_id
    with service.client() as client:
        before = client.get(f"/datasets/{DATASET}").json()["captures_to_review"]
        for verdict, capture_id in ids.items():
            reviewed = client.post(f"/captures/{capture_id}/review", json={"verdict": verdict})
            assert reviewed.status_code == 200, reviewed.text
            body = reviewed.json()
            if verdict == "discard":
                assert body["status"] == "discarded" and body["clip_id"] is None
                assert client.get(f"/captures/{capture_id}/audio").status_code == 404
            else:
                assert body["status"] == "reviewed" and body["verdict"] == verdict
                clip = client.get(f"/recordings/{body['clip_id']}").json()
                assert clip["label"] == verdict and clip["source"] == "capture"
                assert capture_id in clip["notes"]
        twice = client.post(f"/captures/{ids['positive']}/review", json={"verdict": "negative"})
        assert twice.status_code == 409
        after = client.get(f"/datasets/{DATASET}").json()["captures_to_review"]
        assert after == before - 3
        audit = client.get("/audit", params={"object_id": ids["negative"]}).json()
        assert any(entry["action"] == "review:negative" for entry in audit)


def test_bulk_delete_and_retention_remove_unreviewed_captures(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, admin_password="x", capture_retention_days=1e-5)
    registry = start_registry(settings).registry
    create_dataset(registry, DatasetCreate(id="loop", phrase="computer"), "t")
    for _ in range(3):
        wav, sidecar, _ = capture_files()
        receive_capture(registry, "loop", wav, parse_sidecar(sidecar), "board")
    assert list_captures(registry, "loop").total == 3
    time.sleep(1.0)  # older than the retention period
    assert expire_captures(registry) == 3
    assert list_captures(registry, "loop", "all").total == 0
    assert not list(registry.layout.captures_dir("loop").glob("*.wav"))
    registry.close()


def test_a_job_trains_on_reviewed_captures_and_reports_them(tmp_path: Path) -> None:
    registry = start_registry(Settings(data_dir=tmp_path, admin_password="x")).registry
    create_dataset(registry, DatasetCreate(id="loop", phrase="computer"), "t")
    for folder, label, n in (("wake/computer", "positive", 60), ("wake/snowboy", "negative", 45)):
        files = sorted(shared(folder).glob("*.flac"))[:n]
        import_files(registry, files, "loop", ClipMetadata(label=label), "t")
    # "view glass" said near the board woke it: twelve captures, reviewed as false wakes.
    for path in sorted(shared("wake/view_glass").glob("*.flac"))[:12]:
        _, sidecar, capture_id = capture_files()
        audio = io.BytesIO()
        sf.write(audio, read_clip_any(path), 16_000, format="WAV", subtype="PCM_16")
        receive_capture(registry, "loop", audio.getvalue(), parse_sidecar(sidecar), "board")
        review_capture(registry, capture_id, "negative", "admin")
    tiny = {"backend": "marblenet", "epochs": 1, "synth.use": "off", "model.channels": 16,
            "model.mel_bands": 32}  # fmt: skip
    config = apply_overrides(TrainConfig(), tiny)
    card = train(registry, "loop", config).card
    used = card.data.captures
    assert used["train"]["negative"] + used["val"]["negative"] == 12
    assert used["from_models"] == ["tars-default-1234abcd"]
    held_out = card.metrics.captured_false_wakes
    assert held_out["held_out"] == used["val"]["negative"]
    assert 0 <= held_out["fired"] <= held_out["held_out"]
    registry.close()


def read_clip_any(path: Path) -> np.ndarray:
    audio, rate = sf.read(str(path), dtype="float32")
    assert rate == 16_000
    return audio


def test_capture_pull_fetches_the_spool_over_ssh_and_empties_it(tmp_path: Path) -> None:
    board = Board(tmp_path / "board-root").start()
    try:
        spool = board.root / "captures"
        spool.mkdir()
        ids = []
        for _ in range(2):
            wav, sidecar, capture_id = capture_files()
            (spool / f"{capture_id}.wav").write_bytes(wav)
            (spool / f"{capture_id}.json").write_text(sidecar)
            ids.append(capture_id)
        room_wav, room_sidecar, room_id = capture_files("room", folder="speech/not_wake_words")
        (spool / f"{room_id}.wav").write_bytes(room_wav)
        (spool / f"{room_id}.json").write_text(room_sidecar)
        wav, sidecar, bad = capture_files()
        (spool / f"{bad}.wav").write_bytes(b"not audio")
        (spool / f"{bad}.json").write_text(sidecar)
        (spool / f"{uuid.uuid4().hex}.wav").write_bytes(wav)  # being written: no sidecar yet
        data_dir = tmp_path / "data"
        start_registry(Settings(data_dir=data_dir, admin_password="x")).registry.close()
        env = service_env(data_dir, **board.env(DEPLOY_CAPTURE_DIR=str(spool)))

        def pull() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "waketrain", "capture", "pull", "--dataset", DATASET],
                env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip

        first = pull()
        assert first.returncode == 0, first.stderr
        assert "received 3, already there 0, refused 1" in first.stdout
        assert f"refused {bad}" in first.stderr
        assert sorted(p.name for p in spool.glob("*.json")) == []
        assert len(list(spool.glob("*.wav"))) == 1  # the half-written pair stays
        assert (spool / "rejected" / f"{bad}.json").exists()
        reason = (spool / "rejected" / f"{bad}.reason").read_text()
        assert reason.startswith("refused on pull: ") and "audio" in reason.lower(), reason
        again = pull()
        assert "received 0, already there 0, refused 0" in again.stdout
        registry = start_registry(Settings(data_dir=data_dir, admin_password="x")).registry
        assert {c.id for c in list_captures(registry, DATASET).items} == set(ids)
        room = NegativeBank(registry.layout).get("room-tars-pi")
        names = [source.name for source in room.sources]  # "<time>-<capture id>.wav"
        assert room.kind == "room" and len(names) == 1 and names[0].endswith(f"{room_id}.wav")
        registry.close()
    finally:
        board.stop()
