"""CPU cost of wake detection per audio second, and detection latency, in one run.

    .venv/bin/python bench/detector_cost.py [--seconds 120]

Streams the same real audio (the shared noise and speech recordings, looped) in 80 ms chunks,
as a board does, through:
- waketrain's detector with a MarbleNet export (trained for one epoch here, since cost does
  not depend on how well it was trained): log-mel frame by frame, encoder.onnx once per hop;
  and the same model run as a whole window per hop through wake_model.onnx (how exports
  without encoder.onnx stream),
- waketrain's detector with an openWakeWord-head export (oww_head backend),
- waketrain's detector with a causal export (causal backend): log-mel frame by frame, a
  step with carried state per 160 ms; and the same streaming model, untrained from a fixed
  seed, with a step per 160 ms and per 80 ms (what it costs does not depend on its weights),
- openWakeWord 0.6 itself (ONNX feature models, the head above), as TARS runs it,
- microWakeWord (pymicro-wakeword's okay_nabu), when pymicro-wakeword is installed.
CPU time is process time (all threads) over audio time: % of one core per audio second.

Latency, for each trained export: held-out "computer" clips after 2 s of room tone; for each
the model fires on, the stream time from the end of speech in the clip (Silero VAD) to the end
of the hop that fired (audio time; add the per-chunk compute time for wall time). The exports
are trained here on 60 clips, so how many clips they fire on says little of their accuracy
(bench/accuracy.py measures that).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from waketrain.audio.vad import SPEECH_PROBABILITY, chunk_samples, speech_probabilities
from waketrain.runtime.causal_stream import CausalStepModel, CausalStream
from waketrain.runtime.detector import LIVE_THREADS, Detector
from waketrain.runtime.log_mel import FRAME_HOP_SAMPLES
from waketrain.runtime.marblenet_stream import ENCODER_FILE
from waketrain.runtime.stream_cost import CHUNK_SAMPLES as CHUNK
from waketrain.runtime.stream_cost import cpu_percent, describe_cpu
from waketrain.runtime.streaming import StreamingParams
from waketrain.settings import Settings
from waketrain.store.clips import ClipMetadata, Label, import_files
from waketrain.store.datasets import DatasetCreate, create_dataset
from waketrain.store.startup import start_registry
from waketrain.training.causal_export import export_causal_stream
from waketrain.training.causal_model import CausalNetConfig, CausalWakeNet
from waketrain.training.config import TrainConfig, apply_overrides
from waketrain.training.pipeline import train

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SR = 16_000


def read(path: Path) -> np.ndarray:
    audio, _ = sf.read(str(path), dtype="float32", always_2d=True)
    return np.asarray(audio.mean(axis=1))


def bench_audio(seconds: float) -> np.ndarray:
    paths = sorted((SHARED / "noise").rglob("*.flac")) + sorted((SHARED / "speech").rglob("*.flac"))
    audio = np.concatenate([read(p) for p in paths])
    return np.resize(audio, int(seconds * SR))


def train_exports(root: Path) -> dict[str, Path]:
    registry = start_registry(Settings(data_dir=root, admin_password="x")).registry
    create_dataset(registry, DatasetCreate(id="computer", phrase="computer"), "bench")
    sets: list[tuple[str, Label]] = [("wake/computer", "positive"), ("wake/snowboy", "negative")]
    for folder, label in sets:
        files = sorted((SHARED / folder).glob("*.flac"))[:60]
        import_files(registry, files, "computer", ClipMetadata(label=label), "bench")
    exports = {}
    for backend, extra in (("marblenet", {"epochs": 1, "synth.use": "off"}),
                           ("oww_head", {"epochs": 6}),
                           ("causal", {"synth.use": "off"})):  # fmt: skip
        config = apply_overrides(TrainConfig(), {"backend": backend, **extra})
        exports[backend] = train(registry, "computer", config).export_dir
    registry.close()
    return exports


def causal_stream(folder: Path, steps_per_call: int) -> CausalStream:
    torch.manual_seed(0)
    model = CausalWakeNet(CausalNetConfig())
    folder.mkdir()
    step = CausalStepModel(
        export_causal_stream(model, folder, steps_per_call).step, threads=LIVE_THREADS
    )
    params = StreamingParams(
        sample_rate=SR,
        window_samples=model.receptive_field_frames * FRAME_HOP_SAMPLES,
        hop_samples=step.hop_frames * FRAME_HOP_SAMPLES,
        smoothing_windows=3,
        refractory_seconds=1.0,
    )
    return CausalStream(step, params)


def openwakeword_chunk(head: Path) -> Callable[[np.ndarray], object]:
    from openwakeword.model import Model

    models = SHARED.parent / "models" / "openwakeword"
    oww = Model(
        wakeword_models=[str(head)],
        inference_framework="onnx",
        melspec_model_path=str(models / "melspectrogram.onnx"),
        embedding_model_path=str(models / "embedding_model.onnx"),
    )
    return lambda chunk: oww.predict((chunk * 32767).astype(np.int16))


def microwakeword_chunk() -> Callable[[np.ndarray], object] | None:
    try:
        from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model
    except ImportError:
        return None
    mww, features = MicroWakeWord.from_builtin(Model.OKAY_NABU), MicroWakeWordFeatures()

    def process(chunk: np.ndarray) -> None:
        for frame in features.process_streaming((chunk * 32767).astype("<i2").tobytes()):
            mww.process_streaming(frame)

    return process


def speech_end_seconds(clip: np.ndarray) -> float:
    """Where Silero VAD hears the last speech in the clip (clips end with some silence)."""
    speech = np.flatnonzero(speech_probabilities(clip) >= SPEECH_PROBABILITY)
    return float((speech[-1] + 1) * chunk_samples() / SR) if len(speech) else len(clip) / SR


def latencies(export: Path) -> tuple[list[float], int]:
    lead = read(sorted((SHARED / "noise" / "room_tone").glob("*.flac"))[0])[: 2 * SR]
    clips = sorted((SHARED / "wake" / "computer").glob("*.flac"))[300:340]
    found = []
    for path in clips:
        detector = Detector(export / "wake_model.onnx")
        clip = read(path)
        audio = np.concatenate([lead, clip, np.zeros(2 * SR, np.float32)])
        phrase_end = len(lead) / SR + speech_end_seconds(clip)
        for i in range(0, len(audio), CHUNK):
            detections = detector.process(audio[i : i + CHUNK])
            if detections:
                found.append(detections[0].stream_seconds - phrase_end)
                break
    return found, len(clips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    audio = bench_audio(args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        exports = train_exports(Path(tmp))
        rows: list[tuple[str, float]] = []
        for backend, export in exports.items():
            detector = Detector(export / "wake_model.onnx")
            rows.append((f"waketrain detect, {backend}", cpu_percent(detector.process, audio)))
        # The same MarbleNet as exports had it before encoder.onnx: the whole window each hop.
        whole_window = Path(tmp) / "marblenet-whole-window"
        shutil.copytree(exports["marblenet"], whole_window)
        (whole_window / ENCODER_FILE).unlink()
        detector = Detector(whole_window / "wake_model.onnx")
        rows.append(("waketrain detect, marblenet, whole window per hop",
                     cpu_percent(detector.process, audio)))  # fmt: skip
        for steps_per_call in (4, 2):
            causal = causal_stream(Path(tmp) / f"causal-{steps_per_call}", steps_per_call)
            call_ms = steps_per_call * causal.params.hop_seconds * 1000
            rows.append((f"causal stream (untrained, seed 0), a step per {call_ms:.0f} ms",
                         cpu_percent(causal.process, audio)))  # fmt: skip
        head = exports["oww_head"] / "wake_model.onnx"
        rows.append(
            ("openWakeWord 0.6 (ONNX), same head", cpu_percent(openwakeword_chunk(head), audio))
        )
        micro = microwakeword_chunk()
        if micro is not None:
            rows.append(("microWakeWord okay_nabu (pymicro-wakeword)", cpu_percent(micro, audio)))
        latency = {backend: latencies(export) for backend, export in exports.items()}

    print(f"\n{describe_cpu()}, {args.seconds:g} s of audio in 80 ms chunks\n")
    print("| detector | % of one core per audio second |")
    print("| --- | ---: |")
    for name, percent in rows:
        print(f"| {name} | {percent:.2f} % |")
    print("\n| export | latency: end of phrase to the hop that fired, median | max | fired on |")
    print("| --- | ---: | ---: | ---: |")
    for backend, (found, tried) in latency.items():
        ms = [f"{s * 1000:.0f} ms" for s in (np.median(found), max(found))] if found else ["-"] * 2
        print(f"| {backend} | {ms[0]} | {ms[1]} | {len(found)} of {tried} clips |")


if __name__ == "__main__":
    main()
