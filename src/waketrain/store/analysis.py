"""Quality analysis of stored clips, off the request path: one background owner per process."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor
from multiprocessing import get_context

import soundfile as sf
import structlog
from sqlalchemy import select

from waketrain.audio.decode import read_clip
from waketrain.audio.quality import QualityMetrics, measure_quality
from waketrain.processes import die_with_parent
from waketrain.store.events import record_event
from waketrain.store.models import Clip, utcnow
from waketrain.store.projections import write_projections
from waketrain.store.registry import Registry

log = structlog.get_logger(__name__)


def measure_clip_file(path: str) -> QualityMetrics | None:
    """Quality of one stored clip; None when the file cannot be read."""
    try:
        return measure_quality(read_clip(path))
    except (OSError, sf.LibsndfileError, ValueError) as exc:
        log.error("clip unreadable", path=path, error=str(exc))
        return None


MeasureMany = Callable[[list[str]], Iterable[QualityMetrics | None]]


def measure_in_processes(pool: Executor) -> MeasureMany:
    """Run the measurements in `pool`, so the caller's process (the API) stays responsive."""
    return lambda paths: pool.map(measure_clip_file, paths)


def analyze_pending_clips(
    registry: Registry,
    measure_many: MeasureMany,
    should_stop: Callable[[], bool] = lambda: False,
    batch_size: int = 25,
) -> int:
    """Measure every clip that has no quality metrics yet; returns how many were measured."""
    done = 0
    while not should_stop():
        with registry.sessions() as session:
            pending = session.execute(
                select(Clip.id, Clip.dataset_id)
                .where(Clip.analyzed_at.is_(None))
                # Newest first: the clip an operator just recorded is the one they look at.
                .order_by(Clip.created_at.desc())
                .limit(batch_size)
            ).all()
        if not pending:
            break
        touched: set[str] = set()
        paths = [str(registry.layout.clip_path(d, clip_id)) for clip_id, d in pending]
        for (clip_id, dataset_id), metrics in zip(pending, measure_many(paths), strict=True):
            with registry.sessions.begin() as session:
                clip = session.get(Clip, clip_id)
                if clip is None:
                    continue
                clip.analyzed_at = utcnow()
                if metrics is None:
                    clip.quality_score, clip.quality_reasons = 0, ["clip file is unreadable"]
                else:
                    clip.quality_score, clip.quality_reasons = metrics.score, metrics.reasons
                    clip.peak_dbfs, clip.rms_dbfs = metrics.peak_dbfs, metrics.rms_dbfs
                    clip.clipping_ratio, clip.snr_db = metrics.clipping_ratio, metrics.snr_db
                    clip.speech_seconds = metrics.speech_seconds
                    clip.speech_start_seconds = metrics.speech_start_seconds
                    clip.speech_end_seconds = metrics.speech_end_seconds
                record_event(
                    session,
                    "clip.analyzed",
                    {"clip_id": clip_id, "quality_score": clip.quality_score},
                    dataset_id=dataset_id,
                )
            touched.add(dataset_id)
            done += 1
        for dataset_id in touched:
            write_projections(registry, dataset_id)
    return done


def analysis_pool(workers: int) -> ProcessPoolExecutor:
    # spawn, not fork: the parent has threads (uvicorn, SQLAlchemy pools). Its processes die
    # with the parent: an idle one never notices on its own, and keeps the resource tracker alive.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )


class QualityAnalyzer:
    """A thread that analyzes new clips; `notify` after an upload, it also polls for others'.

    The measuring happens in one child process, leaving the API's interpreter free.
    """

    def __init__(self, registry: Registry, poll_seconds: float = 5.0) -> None:
        self._registry = registry
        self._poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="quality-analyzer", daemon=True)
        self._pool = analysis_pool(workers=1)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        # This thread starts the pool's process, which dies with it (see die_with_parent):
        # so this thread, not stop(), shuts the pool down.
        try:
            while not self._stop.is_set():
                try:
                    analyze_pending_clips(
                        self._registry, measure_in_processes(self._pool), self._stop.is_set
                    )
                except Exception:  # keep the owner alive; the next pass retries
                    log.exception("quality analysis failed")
                self._wake.wait(self._poll_seconds)
                self._wake.clear()
        finally:
            self._pool.shutdown(cancel_futures=True)
