"""Does the closed loop work? A model's false wakes, reviewed and trained on, stop waking it.

    .venv/bin/python bench/closed_loop.py [--positives 25] [--set key=value ...]

1. Model A trains on the first N "computer" clips with snowboy, amelia and not-wake-words
   as negatives and half the noise files (synthetic speech off by default: a quick first
   model, the kind whose false wakes an operator meets in the room).
2. "The room": speech and noise the jobs never saw (view_glass, heychatterbox, LibriSpeech,
   two speakers, the other half of the noise files), shuffled and split into two halves.
   Each half streams through A's detector with capture on, exactly as on the board (the
   job's own threshold, near misses from 0.6 of it). None of it holds the phrase, so every
   capture is a false wake or a near miss.
3. The first half's captures enter the dataset through the service's own functions
   (received, then reviewed as negatives); the second half's are held back.
4. Model B trains with the same config on the same clips plus the reviewed captures.
5. Both are measured on what B never saw: the held-back captures (how many make each model
   fire at its own threshold, how many still come near it, the mean peak score), the held-back
   room half streamed whole (false accepts), and recall on the last 111 "computer" clips
   framed by room tone (clean and at 10 dB).
"""

from __future__ import annotations

import argparse
import io
import random
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.runtime.capture import CaptureRecorder, CaptureSettings, spooled_captures
from waketrain.runtime.detector import Detector
from waketrain.runtime.loader import ExportedModel, load_export
from waketrain.settings import Settings
from waketrain.store.captures import parse_sidecar, receive_capture, review_capture
from waketrain.store.clips import ClipMetadata, Label, add_clip
from waketrain.store.datasets import DatasetCreate, create_dataset
from waketrain.store.startup import start_registry
from waketrain.training.config import TrainConfig, apply_overrides, parse_set_options
from waketrain.training.evaluate import clips_that_fire, detected, frame_positives, trigger_times
from waketrain.training.pipeline import train

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
NEGATIVES = ["wake/snowboy", "wake/amelia", "speech/not_wake_words"]
ROOM = ["wake/view_glass", "wake/heychatterbox", "speech/librispeech", "speech/two_speakers"]
NOISE = ["noise/speech_commands", "noise/room_tone", "noise/misc"]
CHUNK = 1280  # 80 ms, as the board reads its microphone
NEAR_MISS_FRACTION = 0.6  # the detector's default: what it captures below the threshold


def flacs(folder: str) -> list[Path]:
    return sorted((SHARED / folder).rglob("*.flac"))


def read(path: Path) -> np.ndarray:
    audio, _ = sf.read(str(path), dtype="float32")
    return np.asarray(audio)


def pieces(path: Path, seconds: float = 25.0) -> list[bytes]:
    """A recording as WAVs no longer than an upload may be, as an operator would cut it."""
    audio = read(path)
    step = int(seconds * SAMPLE_RATE_HZ)
    out = []
    for start in range(0, max(len(audio) - SAMPLE_RATE_HZ, 1), step):  # no tail under 1 s
        buffer = io.BytesIO()
        sf.write(buffer, audio[start : start + step], SAMPLE_RATE_HZ, format="WAV")
        out.append(buffer.getvalue())
    return out


def room_stream(paths: list[Path], tone: np.ndarray) -> np.ndarray:
    """Recordings one after another with a second of room tone between them."""
    gap = np.resize(tone, SAMPLE_RATE_HZ)
    return np.concatenate([part for p in paths for part in (read(p), gap)])


def capture(export: Path, audio: np.ndarray, spool: Path) -> tuple[int, int]:
    """Stream `audio` through the board's detector with capture on; (detections, captures)."""
    detector = Detector(export / "wake_model.onnx")
    recorder = CaptureRecorder(CaptureSettings(spool_dir=spool, board="bench-room"))
    fired = 0
    for start in range(0, len(audio), CHUNK):
        chunk = audio[start : start + CHUNK]
        fired += len(detector.process(chunk))
        if detector.last_hops is not None:
            recorder.feed(chunk, detector.last_hops)
    recorder.close()
    return fired, len(spooled_captures(spool))


def recall(
    model: ExportedModel, positives: list[np.ndarray], tone: np.ndarray, snr: float
) -> float:
    stream = frame_positives(positives, [tone], seed=7, snr_db=snr)
    times = trigger_times(model.score_audio(stream.audio), model.threshold, model.params)
    window = model.params.window_samples / SAMPLE_RATE_HZ
    return float(detected(times, stream.spans, window).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--positives", type=int, default=25)
    parser.add_argument("--set", dest="options", action="append", default=["synth.use=off"])
    args = parser.parse_args()
    overrides = {"min_positive_clips": min(args.positives, 50), **parse_set_options(args.options)}
    config = apply_overrides(TrainConfig(), overrides)
    noise = [p for folder in NOISE for p in flacs(folder)]
    room = [p for folder in ROOM for p in flacs(folder)] + noise[1::2]  # none trained on
    random.Random(7).shuffle(room)
    room_train, room_held = room[: len(room) // 2], room[len(room) // 2 :]
    tone = read(flacs("noise/room_tone")[0])
    held_positives = [read(p) for p in flacs("wake/computer")[-111:]]

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        registry = start_registry(Settings(data_dir=root / "data", admin_password="x")).registry
        create_dataset(registry, DatasetCreate(id="loop", phrase="computer"), "bench")
        clips: list[tuple[Label, Path]] = [
            ("positive", p) for p in flacs("wake/computer")[: args.positives]
        ]
        clips += [("negative", p) for folder in NEGATIVES for p in flacs(folder)]
        clips += [("noise", p) for p in noise[::2]]
        for label, path in clips:
            meta = ClipMetadata(label=label)
            for piece in pieces(path):
                add_clip(registry, "loop", piece, meta, path.name, "bench")
        before = train(registry, "loop", config)

        train_audio, held_audio = room_stream(room_train, tone), room_stream(room_held, tone)
        fired_train, n_train = capture(before.export_dir, train_audio, root / "spool-train")
        _, n_held = capture(before.export_dir, held_audio, root / "spool-held")
        for pair in spooled_captures(root / "spool-train"):
            sidecar = parse_sidecar(pair.sidecar.read_text())
            received = receive_capture(registry, "loop", pair.wav.read_bytes(), sidecar, "board")
            review_capture(registry, received.capture.id, "negative", "bench")
        after = train(registry, "loop", config)
        held_captures = [read(p.wav) for p in spooled_captures(root / "spool-held")]

        rows = []
        for name, result in (("A: before the captures", before), ("B: with them", after)):
            model = load_export(result.export_dir)
            fired = clips_that_fire(model.score_audio, held_captures, model.threshold)
            peaks = np.array([model.score_audio(c).max() for c in held_captures])
            near = int((peaks >= NEAR_MISS_FRACTION * model.threshold).sum())
            times = trigger_times(model.score_audio(held_audio), model.threshold, model.params)
            hours = len(held_audio) / SAMPLE_RATE_HZ / 3600
            rows.append((name, model.threshold, fired, near, float(np.mean(peaks)), len(times),
                         len(times) / hours,
                         recall(model, held_positives, tone, 60.0),
                         recall(model, held_positives, tone, 10.0)))  # fmt: skip
        used = after.card.data.captures
        registry.close()

    minutes = len(train_audio) / SAMPLE_RATE_HZ / 60
    print(f"\nroom audio: {minutes:.1f} min streamed through A with capture on -> "
          f"{n_train} captures ({fired_train} detections), all reviewed as false wakes; "
          f"B trained on {used['train']['negative']} of them ({used['val']['negative']} in its "
          f"validation split). Held back: {len(held_audio) / SAMPLE_RATE_HZ / 60:.1f} min, "
          f"{n_held} captures from A.\n")  # fmt: skip
    print(
        "| model | threshold | held-back captures that fire | still near misses "
        f"(peak >= {NEAR_MISS_FRACTION} x threshold) | mean peak score on them "
        "| false accepts in held-back room audio | FA/h | recall clean | recall 10 dB |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, threshold, fired, near, peak, fa, fa_h, clean, noisy in rows:
        print(f"| {name} | {threshold:.4f} | {fired} of {n_held} | {near} of {n_held} "
              f"| {peak:.3f} | {fa} | {fa_h:.1f} | {clean:.1%} | {noisy:.1%} |")  # fmt: skip


if __name__ == "__main__":
    main()
