"""Accuracy on the shared "computer" set: train on part, test on clips the job never saw.

    .venv/bin/python bench/accuracy.py [--set key=value ...]

Training data: 300 "computer" clips (positives); snowboy, amelia, not-wake-words and part
of the noise folders (negatives, noise). Held out for the test: the other 111 "computer"
clips, and as negative audio view_glass, heychatterbox, librispeech and two_speakers plus
the remaining noise. The threshold is the one the job chose on its own validation split;
the test figures below are measured at that threshold with the streaming code of the board.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.runtime.onnx_model import OnnxWakeModel
from waketrain.runtime.streaming import StreamingParams, score_stream
from waketrain.settings import Settings
from waketrain.store.clips import ClipMetadata, add_clip
from waketrain.store.datasets import DatasetCreate, create_dataset
from waketrain.store.startup import start_registry
from waketrain.training.config import TrainConfig, apply_overrides, parse_set_options
from waketrain.training.evaluate import (
    FRAME_SECONDS,
    detected,
    frame_positives,
    trigger_times,
)
from waketrain.training.pipeline import train

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TRAIN_POSITIVES = 300
TRAIN_NEGATIVES = ["wake/snowboy", "wake/amelia", "speech/not_wake_words"]
TEST_NEGATIVES = [
    "wake/view_glass",
    "wake/heychatterbox",
    "speech/librispeech",
    "speech/two_speakers",
]
NOISE_FOLDERS = ["noise/speech_commands", "noise/room_tone", "noise/misc"]


def flacs(folder: str) -> list[Path]:
    return sorted((SHARED / folder).rglob("*.flac"))


def read(path: Path) -> np.ndarray:
    audio, _ = sf.read(str(path), dtype="float32")
    return audio


def split_noise() -> tuple[list[Path], list[Path]]:
    """Alternate noise files between training and test, so both see every kind."""
    files = [p for folder in NOISE_FOLDERS for p in flacs(folder)]
    return files[::2], files[1::2]


def frr_at(
    model: OnnxWakeModel,
    params: StreamingParams,
    positives: list[np.ndarray],
    background: list[np.ndarray],
    snr_db: float,
    threshold: float,
) -> float:
    """False-reject rate of `positives` framed by `background` at `snr_db`."""
    stream = frame_positives(positives, background, seed=7, snr_db=snr_db)
    times = trigger_times(
        score_stream(model.score_windows, params, stream.audio), threshold, params
    )
    return float(1 - detected(times, stream.spans, params.window_samples / SAMPLE_RATE_HZ).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", dest="options", action="append", default=[])
    args = parser.parse_args()
    config = apply_overrides(TrainConfig(), parse_set_options(args.options))
    positives = flacs("wake/computer")
    train_noise, test_noise = split_noise()

    with tempfile.TemporaryDirectory() as tmp:
        registry = start_registry(Settings(data_dir=Path(tmp), admin_password="x")).registry
        create_dataset(registry, DatasetCreate(id="computer", phrase="computer"), "bench")
        sets = [("positive", positives[:TRAIN_POSITIVES])]
        sets += [("negative", flacs(folder)) for folder in TRAIN_NEGATIVES]
        sets += [("noise", [p for p in train_noise if sf.info(str(p)).duration <= 30])]
        for label, paths in sets:
            for path in paths:
                add_clip(registry, "computer", path.read_bytes(), ClipMetadata(label=label),
                         path.name, "bench")  # fmt: skip
        started = time.perf_counter()
        result = train(registry, "computer", config, rir_dirs=[SHARED / "rir"])
        job_seconds = time.perf_counter() - started
        metadata = result.metadata
        model = OnnxWakeModel(result.export_dir / "wake_model.onnx")

    params = StreamingParams.from_metadata(metadata)
    threshold = metadata["threshold"]
    test_positives = [read(p) for p in positives[TRAIN_POSITIVES:]]
    background = [read(p) for p in test_noise]
    negative_sets = {folder: [read(p) for p in flacs(folder)] for folder in TEST_NEGATIVES}
    negative_sets["noise (held-out half)"] = background
    silence = [np.zeros(SAMPLE_RATE_HZ * 5, np.float32)]

    clean = frr_at(model, params, test_positives, silence, 60.0, threshold)
    noisy = frr_at(model, params, test_positives, background, 10.0, threshold)
    false_accepts, minutes, all_scores = {}, {}, []
    for name, clips in negative_sets.items():
        audio = np.concatenate(clips)
        scores = score_stream(model.score_windows, params, audio)
        all_scores.append(scores)
        false_accepts[name] = len(trigger_times(scores, threshold, params))
        minutes[name] = len(audio) / SAMPLE_RATE_HZ / 60
    total_fa, total_minutes = sum(false_accepts.values()), sum(minutes.values())
    # The model's own trade-off on the test set, whatever threshold the job picked.
    noisy_stream = frame_positives(test_positives, background, seed=7, snr_db=10.0)
    noisy_scores = score_stream(model.score_windows, params, noisy_stream.audio)
    trade_off = []
    for candidate in (0.5, 0.9, 0.95, 0.98, 0.99, 0.995, 0.9975):
        times = trigger_times(noisy_scores, candidate, params)
        frr = 1 - detected(times, noisy_stream.spans, params.window_samples / SAMPLE_RATE_HZ).mean()
        fas = sum(len(trigger_times(s, candidate, params)) for s in all_scores)
        trade_off.append((candidate, frr, fas / (total_minutes / 60)))

    print(f"job {metadata['job_id']}: {job_seconds:.0f} s on {metadata['timings_seconds']}; "
          f"threshold {threshold:.3f} chosen on the job's own validation split "
          f"({metadata['threshold_note']})\n")  # fmt: skip
    print("| test set | clips / audio | measure | value |")
    print("| --- | --- | --- | ---: |")
    print(f"| held-out 'computer', clean (silence around) | {len(test_positives)} clips | FRR | "
          f"{clean:.1%} |")  # fmt: skip
    print(f"| held-out 'computer', noise at 10 dB SNR | {len(test_positives)} clips | FRR | "
          f"{noisy:.1%} |")  # fmt: skip
    for name in negative_sets:
        rate = false_accepts[name] / (minutes[name] / 60)
        print(f"| held-out {name} | {minutes[name]:.1f} min | FA/h | "
              f"{rate:.1f} ({false_accepts[name]}) |")  # fmt: skip
    print(f"| all held-out negative audio | {total_minutes:.1f} min | FA/h | "
          f"{total_fa / (total_minutes / 60):.1f} ({total_fa}) |")  # fmt: skip
    print(f"\nframing: {FRAME_SECONDS:.0f} s of background before and after each positive\n")
    print("| threshold | FRR, noise at 10 dB | FA/h, all held-out negatives |")
    print("| ---: | ---: | ---: |")
    for candidate, frr, fa_rate in trade_off:
        print(f"| {candidate} | {frr:.1%} | {fa_rate:.1f} |")


if __name__ == "__main__":
    main()
