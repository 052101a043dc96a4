"""Ingest and quality-analysis cost on real recordings; prints a table.

.venv/bin/python bench/bench_ingest.py [--clips N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import soundfile as sf
from sqlalchemy import update

from waketrain.settings import Settings
from waketrain.store.analysis import analysis_pool, analyze_pending_clips, measure_in_processes
from waketrain.store.clips import ClipMetadata, add_clip, import_files
from waketrain.store.datasets import DatasetCreate, create_dataset
from waketrain.store.models import Clip, utcnow
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

        def one_at_a_time(dataset_id: str) -> None:
            for name, data in payloads:
                add_clip(registry, dataset_id, data, metadata, name, "bench")

        def three_at_a_time(dataset_id: str) -> None:
            with ThreadPoolExecutor(3) as pool:  # list(): an upload's error is raised here
                list(pool.map(lambda p: add_clip(registry, dataset_id, p[1], metadata, p[0], "b"),
                              payloads))  # fmt: skip

        def folder_import(dataset_id: str) -> None:
            import_files(registry, files, dataset_id, metadata, "bench")

        # Each way into its own dataset, so that each starts from empty projections.
        ways: list[tuple[str, Callable[[str], None]]] = [
            ("uploads, one at a time (decode, store, projections)", one_at_a_time),
            ("uploads, three at a time (the UI's drop zone)", three_at_a_time),
            ("folder import (projections once)", folder_import),
        ]
        for i, (step, ingest) in enumerate(ways):
            dataset_id = f"ingest-{i}"
            create_dataset(registry, DatasetCreate(id=dataset_id, phrase="computer"), "bench")
            start = time.perf_counter()
            ingest(dataset_id)
            rows.append((step, len(files), time.perf_counter() - start))

        for workers in (1, os.cpu_count() or 1):
            with registry.sessions.begin() as session:  # analyse one dataset's clips
                session.execute(update(Clip).values(analyzed_at=utcnow()))
                session.execute(
                    update(Clip).where(Clip.dataset_id == "ingest-2").values(analyzed_at=None)
                )
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
