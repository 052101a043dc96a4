"""The streaming scorer and trigger shared by evaluation and the board's detector."""

from __future__ import annotations

import numpy as np

from waketrain.runtime.streaming import StreamingParams, StreamingScorer, Trigger, score_stream

PARAMS = StreamingParams(
    sample_rate=16000,
    window_samples=16000,
    hop_samples=1600,
    smoothing_windows=3,
    refractory_seconds=1.0,
)


def loudness(windows: np.ndarray) -> np.ndarray:
    """A stand-in model whose score is the window's RMS: easy to reason about."""
    return np.sqrt(np.mean(windows**2, axis=1)).astype(np.float32)


def test_chunk_size_does_not_change_the_scores() -> None:
    audio = np.random.default_rng(0).normal(0, 0.1, 16000 * 7).astype(np.float32)
    whole = score_stream(loudness, PARAMS, audio, chunk_samples=len(audio))
    scorer = StreamingScorer(loudness, PARAMS)
    sizes = [1, 160, 999, 1600, 5000, 20000]
    parts, cursor, i = [], 0, 0
    while cursor < len(audio):
        size = sizes[i % len(sizes)]
        parts.append(scorer.process(audio[cursor : cursor + size]))
        cursor, i = cursor + size, i + 1
    assert np.allclose(np.concatenate(parts), whole)
    assert len(whole) == len(audio) // PARAMS.hop_samples


def test_scores_are_smoothed_over_the_last_windows() -> None:
    audio = np.zeros(16000 * 3, np.float32)
    audio[16000:] = 0.5  # loud from t = 1 s
    scores = score_stream(loudness, PARAMS, audio)
    # Smoothing lags the raw score: the first loud hop is averaged with quieter ones.
    first_loud = int(np.argmax(scores > 0))
    assert scores[first_loud] < scores[first_loud + 3]
    assert np.isclose(scores[-1], 0.5, atol=1e-3)


def test_trigger_fires_once_per_refractory_period() -> None:
    trigger = Trigger(threshold=0.5, refractory_hops=PARAMS.refractory_hops)
    above = np.full(25, 0.9, np.float32)
    assert trigger.update(above) == [0, 11, 22]  # refractory 1 s = 10 hops of 0.1 s
    trigger.reset()
    assert trigger.update(np.array([0.2, 0.49, 0.5, 0.1], np.float32)) == [2]


def test_params_round_trip_through_metadata() -> None:
    metadata = {
        "sample_rate": 16000,
        "window_seconds": 1.0,
        "hop_seconds": 0.1,
        "smoothing_windows": 3,
        "refractory_seconds": 1.0,
    }
    assert StreamingParams.from_metadata(metadata) == PARAMS
