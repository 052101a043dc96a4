"""Time of a default training job on 400 real clips, per phase, on each available device.

    .venv/bin/python bench/train_speed.py [--device cpu|cuda|all] [--set key=value ...]

Each device runs the job twice on the same registry: the first job synthesizes speech and
(oww_head) computes every speech embedding; the repeat finds both in scratch/, as a second
job on the same dataset does in the service.

The dataset: 250 "computer" clips (positive), 120 "snowboy" and 30 not-wake-word clips
(negative); the shared noise folders as background and the shared RIRs for reverberation.
Quality analysis (VAD) happens at import, before the timer starts, as in the service.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from waketrain.settings import Settings
from waketrain.store.analysis import analysis_pool, analyze_pending_clips, measure_in_processes
from waketrain.store.clips import ClipMetadata, Label, import_files
from waketrain.store.datasets import DatasetCreate, create_dataset
from waketrain.store.startup import start_registry

if TYPE_CHECKING:
    from waketrain.training.pipeline import ProgressUpdate

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CLIPS: list[tuple[Label, str, int]] = [
    ("positive", "wake/computer", 250),
    ("negative", "wake/snowboy", 120),
    ("negative", "speech/not_wake_words", 30),
]


class StagePrinter:
    """Prints when each stage starts, and each data-prep step, on stderr: a slow phase shows."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.last = ("", "")  # (stage, message) last printed

    def __call__(self, update: ProgressUpdate) -> None:
        new_stage = update.stage != self.last[0]
        if new_stage or (update.stage == "data_prep" and update.message != self.last[1]):
            seconds = time.perf_counter() - self.started
            print(f"  {seconds:6.1f} s  {update.stage}: {update.message}", file=sys.stderr)
            self.last = (update.stage, update.message)


def main() -> None:
    # Imported here, not above: each analysis process imports this module again (spawn),
    # and 16 of them loading torch at once only delays the import.
    import torch

    from waketrain.training.config import TrainConfig, apply_overrides, parse_set_options
    from waketrain.training.pipeline import train

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--set", dest="options", action="append", default=[])
    args = parser.parse_args()
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        registry = start_registry(Settings(data_dir=Path(tmp), admin_password="x")).registry
        create_dataset(registry, DatasetCreate(id="speed", phrase="computer"), "bench")
        started = time.perf_counter()
        for label, folder, n in CLIPS:
            files = sorted((SHARED / folder).glob("*.flac"))[:n]
            import_files(registry, files, "speed", ClipMetadata(label=label), "bench")
            print(f"  {time.perf_counter() - started:6.1f} s  imported {folder}", file=sys.stderr)
        with analysis_pool(os.cpu_count() or 1) as pool:
            analyze_pending_clips(registry, measure_in_processes(pool))
        print(f"  {time.perf_counter() - started:6.1f} s  analyzed", file=sys.stderr)
        for device in devices:
            config = apply_overrides(
                TrainConfig(), {**parse_set_options(args.options), "device": device}
            )
            name = torch.cuda.get_device_name() if device == "cuda" else platform.processor()
            for run in ("first job", "repeat"):
                print(f"{device}, {run}:", file=sys.stderr)
                result = train(registry, "speed", config, StagePrinter(),
                               noise_dirs=[SHARED / "noise"],
                               rir_dirs=[SHARED / "rir"])  # fmt: skip
                row_label = f"{device} ({name or platform.machine()}), {run}"
                rows.append((row_label, result.timings, result.card))
                phases = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
                print(f"  done: {phases}", file=sys.stderr)
    total_clips = sum(n for _, _, n in CLIPS)
    print(f"{total_clips} clips, {os.cpu_count()} CPU cores\n")
    print("| device | backend | data prep s | training s | eval s | export s | total s | clips/s "
          "| windows/s | epochs | AMP |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for row_label, t, card in rows:
        amp = (card.training_device or {}).get("amp")
        print(
            f"| {row_label} | {card.backend} | {t['data_prep']:.1f} | {t['training']:.1f} "
            f"| {t['eval']:.1f} "
            f"| {t['export']:.1f} | {t['total']:.1f} | {total_clips / t['total']:.1f} "
            f"| {card.metrics.windows_per_second:.0f} | {card.config['epochs']} | {amp} |"
        )


if __name__ == "__main__":
    main()
