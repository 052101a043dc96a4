"""`backend: causal` end to end on real recordings: a tiny job trains, evaluates and exports
the step graph, its whole-stretch twin and the raw-audio contract; the board loads the export
without torch and scores what the whole-stretch graph scores."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from tests.conftest import computer_registry, shared
from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.audio.decode import read_clip
from waketrain.runtime.causal_stream import STEP_FILE, WHOLE_FILE, CausalStream
from waketrain.runtime.detector import Detector
from waketrain.runtime.loader import load_export
from waketrain.runtime.log_mel import FRAME_HOP_SAMPLES, LogMelFrames, frames_for, frames_span
from waketrain.runtime.model_card import read_card
from waketrain.runtime.streaming import Smoother, StreamingParams
from waketrain.store.errors import InvalidInput
from waketrain.store.layout import Layout
from waketrain.store.registry import Registry
from waketrain.training.causal_backend import CausalWake, stream_parity
from waketrain.training.causal_export import export_causal_stream
from waketrain.training.causal_mining import BankAudioNegatives
from waketrain.training.causal_model import CausalNetConfig, CausalWakeNet
from waketrain.training.config import (
    CAUSAL_HOP_FRAMES,
    CAUSAL_WINDOW_FRAMES,
    TrainConfig,
    apply_overrides,
)
from waketrain.training.export import ExportFailed
from waketrain.training.features import LogMel
from waketrain.training.negative_bank import NegativeBank, load_audio, load_oww_features
from waketrain.training.pipeline import TrainResult, train

TINY_CAUSAL = {
    "backend": "causal",
    "epochs": 2,
    "batch_size": 32,
    "negatives_per_positive": 1.0,
    "causal.negative_hops": 8,
    "synth.use": "off",
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    registry = computer_registry(tmp_path_factory.mktemp("causal-registry"), {"wake/snowboy": 45})
    yield registry
    registry.close()


@pytest.fixture(scope="module")
def job(registry: Registry) -> TrainResult:
    return train(registry, "computer", apply_overrides(TrainConfig(), TINY_CAUSAL))


@pytest.fixture(scope="module")
def phrase_in_room(job: TrainResult) -> np.ndarray:
    """Room tone, a "computer" the job never saw, room tone: 5.4 s as a microphone hears it."""
    tone = read_clip(str(sorted(shared("noise/room_tone").rglob("*.flac"))[0]))[:40_000]
    phrase = read_clip(str(sorted(shared("wake/computer").glob("*.flac"))[300]))
    return np.concatenate([tone, phrase, tone[::-1]])


def whole_logits(export: Path, audio: np.ndarray) -> np.ndarray:
    """Logits of causal_whole.onnx over the board's log-mel frames of the whole recording."""
    session = ort.InferenceSession(str(export / WHOLE_FILE), providers=["CPUExecutionProvider"])
    n_mels = session.get_inputs()[0].shape[1]
    features = LogMelFrames(n_mels).frames(audio).T[None]  # (1, mel, frames)
    (logits,) = session.run(["logits"], {"features": np.ascontiguousarray(features)})
    out: np.ndarray = logits[0]
    return out


def test_causal_defaults_are_the_model_s_geometry_and_other_hops_are_refused() -> None:
    config = apply_overrides(TrainConfig(), {"backend": "causal"})
    net = CausalWakeNet(CausalNetConfig())
    assert config.hop_seconds == pytest.approx(net.hop_frames * FRAME_HOP_SAMPLES / SAMPLE_RATE_HZ)
    assert net.hop_frames == CAUSAL_HOP_FRAMES
    # The window holds the receptive field in whole hops, and not a hop more.
    assert frames_for(round(config.window_seconds * SAMPLE_RATE_HZ)) == CAUSAL_WINDOW_FRAMES
    assert CAUSAL_WINDOW_FRAMES % net.hop_frames == 0
    assert 0 <= CAUSAL_WINDOW_FRAMES - net.receptive_field_frames < net.hop_frames
    # The other backends keep theirs.
    assert apply_overrides(TrainConfig(), {"epochs": 3}).hop_seconds == 0.1
    with pytest.raises(InvalidInput, match=r"causal backend's hop_seconds is its model's, 0\.04"):
        apply_overrides(TrainConfig(), {"backend": "causal", "hop_seconds": 0.1})
    with pytest.raises(InvalidInput, match="positive_hops must not exceed"):
        apply_overrides(TrainConfig(), {"causal.positive_hops": 9, "causal.negative_hops": 8})


def test_the_trainer_s_raw_log_mel_is_the_board_s() -> None:
    audio = read_clip(str(sorted(shared("wake/computer").glob("*.flac"))[0]))
    board = LogMelFrames(64).frames(audio).T  # (mel, frames)
    with torch.no_grad():
        trainer = LogMel(64, normalise=False)(torch.from_numpy(audio)[None])[0].numpy()
    assert trainer.shape == board.shape
    # float32 convolution vs numpy's float64 FFT, on log energies that reach about -14
    np.testing.assert_allclose(trainer, board, atol=2e-3)


def test_tiny_causal_job_exports_the_stream_its_twin_and_the_contract_with_its_figures(
    job: TrainResult,
) -> None:
    export = job.export_dir
    for name in (STEP_FILE, WHOLE_FILE, "wake_model.onnx", "metadata.json", "checkpoint.pt"):
        assert (export / name).stat().st_size > 0, name
    card = read_card(export)
    assert card.backend == "causal" and card.hop_seconds == pytest.approx(0.04)
    assert card.window_seconds == pytest.approx(1.222)
    assert card.stream is not None and card.stream["file"] == STEP_FILE
    assert card.config["causal"]["steps_per_call"] == 4
    # The job's evaluation: streamed held-out positives and negatives, a threshold by its rule.
    m = card.metrics
    assert m.positives_evaluated == 2 * card.data.val["positive"]  # at 20 and 10 dB SNR
    assert m.negative_hours > 0 and m.fa_per_hour >= 0 and 0 <= m.frr <= 1
    assert m.det_curve and 0.0 < card.threshold <= 1.0
    assert m.onnx_parity_max_abs_diff is not None and m.onnx_parity_max_abs_diff < 1e-3
    assert "causal" in card.tensorrt
    assert card.stream_cost is not None and card.stream_cost.cpu_percent > 0
    saved = json.loads((job.job_dir / "config.json").read_text())
    assert saved["backend"] == "causal" and saved["hop_seconds"] == pytest.approx(0.04)


def test_the_board_stream_scores_what_the_whole_stretch_graph_scores(
    job: TrainResult, phrase_in_room: np.ndarray
) -> None:
    model = load_export(job.export_dir, threads=1)
    stream = model.stream()
    assert isinstance(stream, CausalStream)
    audio = phrase_in_room
    edges = np.cumsum(np.random.default_rng(0).integers(1, 3000, size=len(audio) // 1000))
    streamed = np.concatenate(
        [stream.process(c) for c in np.split(audio, edges[edges < len(audio)])]
    )
    probabilities = 1 / (1 + np.exp(-whole_logits(job.export_dir, audio).astype(np.float64)))
    expected = Smoother(model.params.smoothing_windows).update(probabilities)
    steps_per_call = 4
    assert len(expected) - steps_per_call < len(streamed) <= len(expected)
    assert np.ptp(expected) > 1e-3  # scores that move with the audio
    np.testing.assert_allclose(streamed, expected[: len(streamed)], atol=1e-4)
    np.testing.assert_allclose(model.score_audio(audio), expected[: len(streamed)], atol=1e-4)


def test_wake_model_onnx_scores_a_window_as_the_stream_scores_its_last_hop(
    job: TrainResult, phrase_in_room: np.ndarray
) -> None:
    """The contract graph on raw audio: a window that ends where hop h's frames end gives
    hop h's probability."""
    session = ort.InferenceSession(str(job.export_dir / "wake_model.onnx"))
    (audio_input,) = session.get_inputs()
    window = audio_input.shape[1]
    hop_samples = CAUSAL_HOP_FRAMES * FRAME_HOP_SAMPLES
    hops_per_window = CAUSAL_WINDOW_FRAMES // CAUSAL_HOP_FRAMES
    logits = whole_logits(job.export_dir, phrase_in_room)
    hops = np.arange(hops_per_window, len(logits), 7)
    starts = (hops - hops_per_window + 1) * hop_samples
    windows = np.stack([phrase_in_room[s : s + window] for s in starts])
    (scores,) = session.run(None, {"audio": windows})
    assert scores.shape == (len(hops),)
    np.testing.assert_allclose(scores, 1 / (1 + np.exp(-logits[hops])), atol=1e-4)


def test_a_torch_checkpoint_of_the_job_loads_into_the_model(job: TrainResult) -> None:
    checkpoint = torch.load(job.export_dir / "checkpoint.pt", map_location="cpu")
    model = CausalWake(CausalNetConfig())
    model.load_state_dict(checkpoint["model"])
    assert checkpoint["config"]["backend"] == "causal"


def test_the_detector_runs_a_causal_export_without_torch_and_hot_swaps_it(
    job: TrainResult, phrase_in_room: np.ndarray, tmp_path: Path
) -> None:
    """As on the board: only the runtime extra, `current` swapped to another release."""
    board = tmp_path / "board"
    first, second = board / "releases" / "first", board / "releases" / "second"
    shutil.copytree(job.export_dir, first)
    shutil.copytree(job.export_dir, second)
    metadata = json.loads((second / "metadata.json").read_text())
    (second / "metadata.json").write_text(json.dumps({**metadata, "model_id": "second-model"}))
    os.symlink("releases/first", board / "current")
    audio_path = tmp_path / "audio.npy"
    np.save(audio_path, phrase_in_room)
    code = f"""
import os, sys
from pathlib import Path
import numpy as np
from waketrain.runtime.causal_stream import CausalStream
from waketrain.runtime.detector import Detector
board = Path({str(board)!r})
detector = Detector(board / "current" / "wake_model.onnx", threshold=0.0)
audio = np.load({str(audio_path)!r})
fired = len(detector.process(audio[:40_000]))
os.symlink("releases/second", board / "current.new")
os.replace(board / "current.new", board / "current")
assert detector.reload_if_changed(), detector.reload_error
assert detector.model.card.model_id == "second-model"
assert isinstance(detector._stream, CausalStream)
fired += len(detector.process(audio[40_000:]))
assert fired >= 1, fired
assert "torch" not in sys.modules, "the board has no torch"
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def test_the_detector_in_process_reads_the_causal_card(job: TrainResult) -> None:
    detector = Detector(job.export_dir / "wake_model.onnx")
    assert detector.model.card.backend == "causal"
    assert detector.threshold == read_card(job.export_dir).threshold
    assert detector.model.params.hop_samples == 640


def random_export(folder: Path, seed: int) -> Path:
    folder.mkdir()
    torch.manual_seed(seed)
    export_causal_stream(CausalWakeNet(CausalNetConfig()).eval(), folder)
    return folder


def test_an_export_whose_stream_and_whole_stretch_graph_disagree_is_refused(
    tmp_path: Path, phrase_in_room: np.ndarray
) -> None:
    a, b = random_export(tmp_path / "a", 0), random_export(tmp_path / "b", 1)
    params = StreamingParams(SAMPLE_RATE_HZ, 19_552, 640, 1, 2.0)
    assert stream_parity(a / STEP_FILE, a / WHOLE_FILE, params, phrase_in_room) < 1e-4
    with pytest.raises(ExportFailed, match="disagree"):
        stream_parity(a / STEP_FILE, b / WHOLE_FILE, params, phrase_in_room)


def test_warm_start_from_an_earlier_causal_job_and_not_across_backends(
    registry: Registry, job: TrainResult
) -> None:
    one_epoch = apply_overrides(TrainConfig(), {**TINY_CAUSAL, "epochs": 1})
    again = train(registry, "computer", one_epoch, init_from=job.job_id)
    assert read_card(again.export_dir).backend == "causal"
    # The same settings with another backend: its own hop and window, not the causal ones.
    marblenet = apply_overrides(TrainConfig(), {**TINY_CAUSAL, "backend": "marblenet"})
    assert marblenet.hop_seconds == 0.1
    with pytest.raises(InvalidInput, match="trained the causal backend"):
        train(registry, "computer", marblenet, init_from=job.job_id)


def last_hop_loudness(audio: np.ndarray) -> np.ndarray:
    """A stand-in model, (n, samples) -> (n, hops): each hop's logit is the loudness of the
    frames it ends with, so where it "fires" can be checked by ear and by number."""
    hops = frames_for(audio.shape[1]) // CAUSAL_HOP_FRAMES
    span = CAUSAL_HOP_FRAMES * FRAME_HOP_SAMPLES
    return np.stack(
        [[float(np.sqrt(np.mean(row[h * span : (h + 1) * span] ** 2))) for h in range(hops)]
         for row in audio]
    )  # fmt: skip


def test_bank_windows_end_where_the_model_fires_and_each_moment_once(tmp_path: Path) -> None:
    bank = NegativeBank(Layout(tmp_path))
    bank.add([shared("speech/librispeech")], "talk", "speech")
    frames = 180
    window = frames_span(frames)
    negatives = BankAudioNegatives(
        bank, load_oww_features(bank), frames, window, CAUSAL_HOP_FRAMES, seed=0
    )
    assert negatives and negatives.hours == pytest.approx(0.76 / 60, rel=0.05)

    first = negatives.epoch_windows(16, 0.5, 60.0, None)  # no model yet: all at random
    assert first.shape == (16, window) and negatives.mined == 0

    chosen = negatives.epoch_windows(16, 0.5, 60.0, last_hop_loudness)
    assert chosen.shape == (16, window) and negatives.mined == 8
    hard = last_hop_loudness(chosen[8:])[:, -1]
    everywhere = np.concatenate(
        [last_hop_loudness(load_audio(bank, s.set_id, s.source)[None])[0]
         for s in load_oww_features(bank)]
    )  # fmt: skip
    # The mined windows end on the loudest moments of the talk; the random ones need not.
    assert hard.min() >= np.quantile(everywhere, 0.6)
    assert hard.mean() > last_hop_loudness(chosen[:8])[:, -1].mean()
    assert len({row.tobytes() for row in chosen[8:]}) == 8

    # 45 s of talk hold fewer moments than 40 hard windows half a window apart: the rest
    # of the epoch's windows are drawn at random.
    many = negatives.epoch_windows(80, 0.5, 60.0, last_hop_loudness)
    assert many.shape == (80, window) and 8 < negatives.mined < 8 + 40


def test_a_causal_job_trains_on_the_bank_s_audio_and_mines_it(tmp_path: Path) -> None:
    registry = computer_registry(tmp_path / "registry", {"wake/snowboy": 45})
    NegativeBank(registry.layout).add([shared("speech/librispeech")], "talk", "speech")
    overrides = TINY_CAUSAL | {"bank.calibration_share": 0.0, "causal.bank_windows": 32,
                               "causal.mining_seconds": 30.0}  # fmt: skip
    result = train(registry, "computer", apply_overrides(TrainConfig(), overrides))
    bank = result.card.data.negative_bank
    assert bank["training_hours"] > 0 and bank["calibration_hours"] == 0
    assert bank["hard_windows_mined"] == 16  # half of 32 in the second (last) epoch
    log = (result.job_dir / "logs.txt").read_text()
    assert "32 windows an epoch from 0.01 h of the negative bank, 50% of them mined" in log
    registry.close()
