"""Ingest and quality-analysis cost on real recordings; prints a table.

.venv/bin/python bench/bench_ingest.py [--clips N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import soundfile as sf
from sqlalchemy import update

from waketrain.settings import Settings
from waketrain.store.analysis import analysis_pool, analyze_pending_clips, measure_in_processes
from waketrain.store.clips import ClipMetadata, add_clip
from waketrain.store.models import Clip
from waketrain.store.startup import start_registry

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=200)
    args = parser.parse_args()
    files = sorted((SHARED / "wake" / "computer").glob("*.flac"))[: args.clips]
    audio_seconds = sum(sf.info(str(f)).duration for f in files)
    payloads = [(f.name, f.read_bytes()) for f in files]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        registry = start_registry(Settings(data_dir=Path(tmp), admin_password="x")).registry
        metadata = ClipMetadata(label="positive")
        start = time.perf_counter()
        for name, data in payloads:
            add_clip(registry, "tars-default", data, metadata, name, "bench")
        ingest = time.perf_counter() - start
        rows.append(("ingest (decode, store, projections)", len(files), ingest))

        for workers in (1, os.cpu_count() or 1):
            with registry.sessions.begin() as session:
                session.execute(update(Clip).values(analyzed_at=None))
            pool: ProcessPoolExecutor
            with analysis_pool(workers) as pool:
                pool.submit(int).result()  # start the worker before timing
                start = time.perf_counter()
                analyze_pending_clips(registry, measure_in_processes(pool))
                rows.append(
                    (
                        f"quality + VAD, {workers} process(es)",
                        len(files),
                        time.perf_counter() - start,
                    )
                )
    print(
        f"{len(files)} clips of wake/computer, {audio_seconds / 60:.1f} min of audio, "
        f"{os.cpu_count()} CPU cores\n"
    )
    print("| step | clips | seconds | ms per clip | audio seconds per second |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for step, n, seconds in rows:
        print(
            f"| {step} | {n} | {seconds:.1f} | {seconds / n * 1000:.0f} | "
            f"{audio_seconds / seconds:.0f} |"
        )


if __name__ == "__main__":
    main()
