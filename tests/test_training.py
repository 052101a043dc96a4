"""The training pipeline on real recordings, with a tiny config so it runs in CI."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf
import torch

from tests.conftest import (
    computer_registry,
    import_subset,
    run_cli,
    running,
    service_env,
    shared,
)
from waketrain.audio.decode import read_clip
from waketrain.jobs import queue
from waketrain.runtime.loader import load_export
from waketrain.runtime.marblenet_stream import MarbleNetStream
from waketrain.runtime.onnx_model import OnnxWakeModel
from waketrain.runtime.streaming import score_stream
from waketrain.store.clips import ClipMetadata, add_clip
from waketrain.store.datasets import DatasetCreate, create_dataset
from waketrain.store.errors import InvalidInput
from waketrain.store.registry import Registry
from waketrain.training.config import TrainConfig, apply_overrides, parse_set_options
from waketrain.training.data import Example, speaker_split
from waketrain.training.export import trtexec_command
from waketrain.training.pipeline import JobCancelled, ProgressUpdate, train

TINY = {
    "backend": "marblenet",
    "epochs": 2,
    "batch_size": 32,
    "negatives_per_positive": 1.0,
    "model.channels": 16,
    "model.mel_bands": 32,
    "synth.use": "off",
}
METADATA_KEYS = {
    "model_id", "backend", "phrase", "sample_rate", "window_seconds", "hop_seconds", "threshold",
    "smoothing_windows", "refractory_seconds", "target_fa_per_hour", "metrics", "dataset_sha256",
    "config", "versions", "created",
}  # fmt: skip


def tiny_config(**extra: object) -> TrainConfig:
    return apply_overrides(TrainConfig(), {**TINY, **extra})


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    registry = computer_registry(tmp_path_factory.mktemp("train-registry"), {"wake/snowboy": 45})
    yield registry
    registry.close()


def test_tiny_training_job_exports_everything(registry: Registry) -> None:
    updates: list[ProgressUpdate] = []
    # MarbleNet with a little synthetic speech: extra positives and confusable negatives.
    synthetic = {"synth.use": "auto", "synth.positives": 8, "synth.confusables": 8,
                 "synth.speech": 4}  # fmt: skip
    result = train(registry, "computer", tiny_config(**synthetic), updates.append,
                   rir_dirs=[shared("rir")])  # fmt: skip

    export = result.export_dir
    for name in ("wake_model.onnx", "metadata.json", "checkpoint.pt", "det_curve.png",
                 "confusion_matrix.png"):  # fmt: skip
        assert (export / name).stat().st_size > 0, name
    metadata = json.loads((export / "metadata.json").read_text())
    assert set(metadata) >= METADATA_KEYS
    assert {"frr", "fa_per_hour", "auc"} <= set(metadata["metrics"])
    assert metadata["backend"] == "marblenet" and metadata["phrase"] == "computer"
    assert 0.0 < metadata["threshold"] < 1.0
    expected_device = "cuda" if torch.cuda.is_available() else "cpu"
    assert metadata["training_device"]["type"] == expected_device
    assert metadata["metrics"]["onnx_parity_max_abs_diff"] < 1e-3
    assert "trtexec" in metadata["tensorrt"]
    # Where TensorRT exists: the shapes given to trtexec are the input's, the window static.
    command = trtexec_command("trtexec", export / "wake_model.onnx", export / "wake_model.trt")
    assert command[-3:] == ["--minShapes=audio:1x16000", "--optShapes=audio:1x16000",
                            "--maxShapes=audio:64x16000"]  # fmt: skip
    assert metadata["config"]["epochs"] == 2 and metadata["config"]["model"]["channels"] == 16
    assert metadata["data"]["synthetic"]["generated"] == {
        "positive": 8, "confusable": 8, "speech": 4,
    }  # fmt: skip
    assert metadata["data"]["train"]["positive"] == 48 + 8  # real training split + synthetic
    saved = json.loads((result.job_dir / "config.json").read_text())
    assert saved == metadata["config"]

    # The ONNX contract: raw audio [batch, samples] in, probability [batch] out.
    session = ort.InferenceSession(str(export / "wake_model.onnx"))
    assert session.get_inputs()[0].name == "audio"
    speech, _ = sf.read(str(sorted(shared("wake/computer").glob("*.flac"))[100]), dtype="float32")
    batch = np.zeros((3, 16000), np.float32)
    batch[1, : min(16000, len(speech))] = speech[:16000]
    batch[2] = np.random.default_rng(0).normal(0, 0.05, 16000)
    (scores,) = session.run(None, {"audio": batch})
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))

    stages = [u.stage for u in updates]
    assert stages[0] == "data_prep" and stages[-1] == "export"
    assert sorted(set(stages), key=stages.index) == ["data_prep", "training", "eval", "export"]
    assert [u.progress for u in updates] == sorted(u.progress for u in updates)
    log = (result.job_dir / "logs.txt").read_text()
    assert "epoch 2/2" in log and "threshold" in log
    # Every held-out positive it missed is listed, with ingest's level and a cause.
    m = metadata["metrics"]
    missed = m["missed_positives"]
    assert sum(len(miss["missed_at"]) for miss in missed) == round(
        m["frr"] * m["positives_evaluated"]
    )
    for miss in missed:
        assert miss["peak_dbfs"] is not None and miss["cause"] and miss["advice"]
        assert set(miss["scores"]) == {"20 dB", "10 dB"}
        assert f"missed held-out positive: clip {miss['clip_id']}" in log
    artifacts = json.loads((registry.layout.root / "artifacts.json").read_text())["models"]
    assert artifacts[result.job_id]["dataset_sha256"] == metadata["dataset_sha256"]


TINY_HEAD_REAL_ONLY = {"backend": "oww_head", "epochs": 2, "batch_size": 128, "synth.use": "off",
                       "head.positive_variants": 1, "head.negative_variants": 1}  # fmt: skip


TINY_CAUSAL = {"backend": "causal", "epochs": 2, "batch_size": 32, "synth.use": "off",
               "negatives_per_positive": 1.0, "causal.negative_hops": 8}  # fmt: skip


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to PyTorch")
@pytest.mark.parametrize(
    "options", [TINY, TINY_HEAD_REAL_ONLY, TINY_CAUSAL], ids=["marblenet", "oww_head", "causal"]
)
def test_cuda_job_exports_a_model_that_runs_on_the_cpu(
    registry: Registry, options: dict[str, object]
) -> None:
    config = apply_overrides(TrainConfig(), {**options, "device": "cuda", "amp": True})
    result = train(registry, "computer", config)
    device = result.card.training_device
    assert device is not None
    assert device["type"] == "cuda"
    # Mixed precision is the CNN loops'; the small head trains in float32.
    assert device["amp"] == (options["backend"] in ("marblenet", "causal"))
    assert (result.card.metrics.onnx_parity_max_abs_diff or 0) < 1e-3
    checkpoint = torch.load(result.export_dir / "checkpoint.pt", map_location="cpu")
    assert all(t.device.type == "cpu" for t in checkpoint["model"].values())
    assert 0.0 < result.card.threshold < 1.0


def test_board_stream_scores_what_the_whole_window_model_scores(registry: Registry) -> None:
    export = train(registry, "computer", tiny_config(epochs=1)).export_dir
    assert (export / "encoder.onnx").stat().st_size > 0
    model = load_export(export, threads=1)
    assert isinstance(model.stream(), MarbleNetStream)
    params = model.params
    whole_window = OnnxWakeModel(export / "wake_model.onnx").score_windows
    # A held-out phrase between room tone, fed in odd-sized chunks as a microphone would.
    tone = read_clip(str(sorted(shared("noise/room_tone").rglob("*.flac"))[0]))[:32_000]
    phrase = read_clip(str(sorted(shared("wake/computer").glob("*.flac"))[300]))
    audio = np.concatenate([tone, phrase, tone])
    stream = model.stream()
    edges = np.cumsum(np.random.default_rng(0).integers(1, 3000, size=len(audio) // 1000))
    streamed = np.concatenate(
        [stream.process(c) for c in np.split(audio, edges[edges < len(audio)])]
    )
    expected = score_stream(whole_window, params, audio)
    assert len(streamed) == len(expected) == len(audio) // params.hop_samples
    np.testing.assert_allclose(streamed, expected, atol=1e-4)
    np.testing.assert_allclose(model.score_audio(audio), expected, atol=1e-4)


def test_warm_start_from_an_earlier_job(registry: Registry) -> None:
    first = train(registry, "computer", tiny_config(epochs=1))
    second = train(registry, "computer", tiny_config(epochs=1), init_from=first.job_id)
    assert (second.export_dir / "wake_model.onnx").exists()
    with pytest.raises(InvalidInput, match="different model shape"):
        train(registry, "computer", tiny_config(**{"model.channels": 24}), init_from=first.job_id)


def test_cancel_stops_between_batches(registry: Registry) -> None:
    with pytest.raises(JobCancelled, match="cancelled"):
        train(registry, "computer", tiny_config(), should_cancel=lambda: True)


def test_too_small_dataset_is_refused_with_the_counts(registry: Registry) -> None:
    create_dataset(registry, DatasetCreate(id="small", phrase="computer"), "test")
    import_subset(registry, "small", "wake/computer", "positive", 5)
    with pytest.raises(InvalidInput, match=r"5 usable positive clips; .* 0 usable negative"):
        train(registry, "small", TrainConfig())


def test_near_silent_and_duplicate_clips_are_skipped_and_reported(registry: Registry) -> None:
    create_dataset(registry, DatasetCreate(id="dupes", phrase="computer"), "test")
    path = sorted(shared("wake/computer").glob("*.flac"))[0]
    for _ in range(2):
        add_clip(registry, "dupes", path.read_bytes(), ClipMetadata(label="positive"), "a", "t")
    silent = np.zeros(16000, np.float32)
    silent[::100] = 1e-5
    buffer = Path(registry.layout.scratch / "silent.wav")
    sf.write(buffer, silent, 16000, subtype="PCM_16")
    add_clip(registry, "dupes", buffer.read_bytes(), ClipMetadata(label="negative"), "s", "t")
    with pytest.raises(InvalidInput) as caught:
        train(registry, "dupes", TrainConfig())
    assert "1 usable positive clips (2 left out: near silent or duplicate)" in str(caught.value)
    assert "0 usable negative + noise clips" in str(caught.value)


@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        (["epochs=0"], "epochs"),
        (["window_seconds=3"], "window_seconds"),
        (["learning_rate=1"], "Unknown config key 'learning_rate'"),
        (["augment.snr_db_min=30", "augment.snr_db_max=10"], "snr_db_min must not exceed"),
        (["device=tpu"], "device"),
        (["epochs"], "Expected key=value"),
        (["hop_seconds=0.5", "window_seconds=0.5", "smoothing_windows=0"], "smoothing_windows"),
    ],
)
def test_bad_configs_name_the_problem(options: list[str], phrase: str) -> None:
    with pytest.raises(InvalidInput, match=phrase):
        apply_overrides(TrainConfig(), parse_set_options(options))


def test_speaker_split_never_puts_one_speaker_on_both_sides() -> None:
    examples = [
        Example(f"c{i}", "positive" if i % 3 else "negative", f"spk{i % 7}", np.zeros(10))
        for i in range(70)
    ] + [Example(f"u{i}", "noise", None, np.zeros(10)) for i in range(10)]
    train_set, val_set = speaker_split(examples, 0.2, seed=1)
    assert not {e.speaker for e in train_set if e.speaker} & {
        e.speaker for e in val_set if e.speaker
    }
    assert len(train_set) + len(val_set) == len(examples)
    assert {e.label for e in val_set} == {"positive", "negative", "noise"}
    assert 0.1 < len(val_set) / len(examples) < 0.4


def test_one_speaker_datasets_still_train_on_most_clips() -> None:
    """An operator who recorded everything under one name: clips are lent, not all held out."""
    examples = [
        Example(f"c{i}", "positive" if i % 2 else "negative", "me", np.zeros(10)) for i in range(20)
    ]
    train_set, val_set = speaker_split(examples, 0.2, seed=1)
    assert len(train_set) == 16 and len(val_set) == 4
    assert sorted(e.label for e in val_set) == ["negative", "negative", "positive", "positive"]


def test_untagged_clips_split_by_content_whatever_their_ids() -> None:
    def held_out(prefix: str) -> set[str]:
        examples = [
            Example(f"{prefix}{i}", "positive" if i % 2 else "negative", None, np.zeros(10),
                    sha256=f"content-{i}")
            for i in range(40)
        ]  # fmt: skip
        return {e.sha256 for e in speaker_split(examples, 0.2, seed=3)[1]}

    assert held_out("a") == held_out("b") and len(held_out("a")) == 8


def set_options(config: dict[str, object]) -> list[str]:
    return [arg for key, value in config.items() for arg in ("--set", f"{key}={value}")]


def test_cli_train_prints_the_job_and_export_folder(registry: Registry) -> None:
    sets = set_options({**TINY, "epochs": 1})
    run = run_cli(registry.layout.root, "train", "--dataset", "computer", *sets)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    job_id = lines[0].removeprefix("job ")
    export = Path(lines[1].removeprefix("export "))
    assert export == registry.layout.jobs / job_id / "export"
    assert (export / "wake_model.onnx").exists() and "95 % bound <" in lines[2]
    assert "data_prep" in run.stderr and "training: epoch 1/1" in run.stderr
    # A job like the API's: listed with its metrics and, with auto-bless, the current model.
    job = queue.get_job(registry, job_id)
    assert job.status == "succeeded" and job.created_by == "cli" and job.stage == "export"
    assert job.metrics is not None
    log_odds = job.metrics["threshold_log_odds"]
    assert lines[2].startswith(
        f"threshold {job.metrics['threshold']:.6g} (log-odds {log_odds:.2f}): "
    )
    assert abs(1 / (1 + math.exp(-log_odds)) - job.metrics["threshold"]) < 1e-9
    model = f"model {job.metrics['model_id']} ({job.metrics['backend']}): streaming costs "
    assert lines[3].startswith(model) and "% of one CPU core per second of audio" in lines[3]
    missed = [line for line in lines if line.startswith("missed held-out positive: clip ")]
    assert len(missed) == len(job.metrics["missed_positives"])
    assert queue.current_job_id(registry) == job_id

    bad = run_cli(registry.layout.root, "train", "--dataset", "computer", "--set", "epochs=-1")
    assert bad.returncode == 1 and "epochs" in bad.stderr and "Traceback" not in bad.stderr


def test_ctrl_c_cancels_the_cli_job_instead_of_leaving_it_running(registry: Registry) -> None:
    sets = [
        arg for key, value in {**TINY, "epochs": 50}.items() for arg in ("--set", f"{key}={value}")
    ]
    before = {job.id for job in queue.list_jobs(registry)}
    with running(
        [sys.executable, "-m", "waketrain", "train", "--dataset", "computer", *sets],
        env=service_env(registry.layout.root), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    ) as cli:  # fmt: skip
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            new = [job for job in queue.list_jobs(registry) if job.id not in before]
            if new and new[0].stage == "training":
                break
            time.sleep(0.2)
        assert new and new[0].status == "running" and new[0].created_by == "cli"
        cli.send_signal(signal.SIGINT)
        _, stderr = cli.communicate(timeout=120)
    assert cli.returncode != 0
    job = queue.get_job(registry, new[0].id)
    assert job.status == "cancelled" and job.error == "interrupted (Ctrl-C)", stderr
