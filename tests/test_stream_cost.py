"""What streaming a model costs: CPU per audio second, counted on the clock it is asked for."""

from __future__ import annotations

import time

import numpy as np
import pytest

from waketrain.runtime.stream_cost import cpu_percent, describe_cpu


def test_the_callers_thread_clock_counts_work_and_not_waiting() -> None:
    audio = np.zeros(16_000 * 2, np.float32)

    def work(chunk: np.ndarray) -> None:
        np.linalg.svd(np.random.default_rng(0).standard_normal((64, 64)))

    def wait(chunk: np.ndarray) -> None:
        time.sleep(0.001)

    assert cpu_percent(work, audio, time.thread_time) > cpu_percent(wait, audio, time.thread_time)


def test_too_little_audio_is_refused_and_the_machine_is_named() -> None:
    with pytest.raises(ValueError, match="80 ms"):
        cpu_percent(lambda chunk: None, np.zeros(100, np.float32))
    assert describe_cpu()
