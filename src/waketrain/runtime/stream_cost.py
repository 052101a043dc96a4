"""What streaming a model costs: CPU time per second of audio, fed in the board's 80 ms chunks."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from waketrain.audio.constants import SAMPLE_RATE_HZ

CHUNK_SAMPLES = 1280  # 80 ms, what the board's microphone source hands the detector
WARM_UP_CHUNKS = 50  # sessions and buffers settle before the clock starts


def cpu_percent(
    process_chunk: Callable[[np.ndarray], object],
    audio: np.ndarray,
    clock: Callable[[], float] = time.process_time,
) -> float:
    """Percent of one core per audio second that `process_chunk` takes over `audio`.

    The default clock counts every thread of the process (right for libraries with their own
    thread pools); `time.thread_time` counts only the caller's, which is where a one-thread
    onnxruntime session does all its work, and ignores whatever else the process runs.
    """
    starts = range(0, len(audio) - CHUNK_SAMPLES + 1, CHUNK_SAMPLES)
    chunks = [audio[i : i + CHUNK_SAMPLES] for i in starts]
    if not chunks:
        raise ValueError("need at least one 80 ms chunk of audio to measure")
    for chunk in chunks[:WARM_UP_CHUNKS]:
        process_chunk(chunk)
    start = clock()
    for chunk in chunks:
        process_chunk(chunk)
    return 100 * (clock() - start) / (len(chunks) * CHUNK_SAMPLES / SAMPLE_RATE_HZ)


def describe_cpu() -> str:
    """The CPU's model name where Linux says it (else the platform's), and the architecture."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                name = line.split(":", 1)[1].strip() or name
                break
    except OSError:
        pass
    return f"{name}, {platform.machine()}"
