"""The streaming scorer and trigger shared by evaluation and the board's detector."""

from __future__ import annotations

import math

import numpy as np
import pytest

from waketrain.runtime.model_card import Metrics, ModelCard
from waketrain.runtime.streaming import StreamingParams, StreamingScorer, Trigger, score_stream
from waketrain.training.evaluate import (
    PositiveStream,
    ThresholdChoice,
    evaluate_streaming,
    fa_upper_bound,
    hours_to_decide,
    sweep,
)

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


def test_params_round_trip_through_the_model_card() -> None:
    card = ModelCard(
        model_id="m",
        phrase="computer",
        sample_rate=16000,
        window_seconds=1.0,
        hop_seconds=0.1,
        threshold=0.5,
        smoothing_windows=3,
        refractory_seconds=1.0,
        metrics=Metrics(frr=0.0, fa_per_hour=0.0),
    )
    assert StreamingParams.from_card(card) == PARAMS


def test_threshold_is_chosen_within_the_frr_tolerance_among_those_meeting_the_fa_target() -> None:
    # A "model" whose score at each 0.1 s hop is the signal's value at the end of the hop.
    params = StreamingParams(sample_rate=16_000, window_samples=1600, hop_samples=1600,
                             smoothing_windows=1, refractory_seconds=0.0)  # fmt: skip
    peaks = [0.991] * 19 + [0.951]  # one positive is weaker
    audio = np.zeros(1600 * 3 * len(peaks), np.float32)
    spans = []
    for k, peak in enumerate(peaks):
        audio[1600 * (3 * k + 1) : 1600 * (3 * k + 2)] = peak
        spans.append(((3 * k + 1) * 0.1, (3 * k + 2) * 0.1))
    negatives = np.zeros(16_000 * 60, np.float32)
    negatives[16_000 : 16_000 + 1600] = 0.901  # one near miss in a minute: 60 FA/h below 0.9

    def choose(tolerance: float, choice: ThresholdChoice) -> float:
        result = evaluate_streaming(
            lambda a: a[1599::1600], params, PositiveStream(audio, spans), [negatives],
            target_fa_per_hour=1.0, frr_tolerance=tolerance, choice=choice,
        )  # fmt: skip
        assert result.fa_per_hour == 0.0 and result.false_accepts == 0
        # None in one minute bounds the rate only below 180/h: the target is not claimed.
        assert not result.target_met
        assert result.fa_per_hour_upper == pytest.approx(179.7, abs=0.1)
        assert result.hours_to_decide == pytest.approx(2.996 - 1 / 60, abs=0.001)
        assert "0 in 0.02 h: 0.0/h (95 % bound < 179.7/h)" in result.note
        assert "about 3.0 h more negative audio" in result.note
        return result.threshold

    # The search runs over the scores themselves, not only a grid.
    assert choose(0.0, "highest") == pytest.approx(0.951)  # all caught, as high as that allows
    assert choose(0.05, "highest") == pytest.approx(0.991)  # one in 20 given up for margin

    # midway: halfway in log-odds between the near miss and the weakest positive kept (the
    # candidates near there are 0.0025 apart, under 0.05 in log-odds)
    def log_odds(p: float) -> float:
        return math.log(p / (1 - p))

    for tolerance, weakest_kept in ((0.0, 0.951), (0.05, 0.991)):
        middle = (log_odds(0.901) + log_odds(weakest_kept)) / 2
        assert abs(log_odds(choose(tolerance, "midway")) - middle) < 0.05


def test_zero_false_accepts_in_twenty_minutes_is_below_nine_per_hour_not_zero() -> None:
    assert fa_upper_bound(0, 1 / 3) == pytest.approx(8.99, abs=0.01)
    assert fa_upper_bound(3, 10.0) == pytest.approx(0.775, abs=0.001)
    assert hours_to_decide(0, 1 / 3, 1.0) == pytest.approx(2.996 - 1 / 3, abs=0.001)
    assert hours_to_decide(0, 4.0, 1.0) == 0.0


def test_calibration_streams_count_and_the_search_separates_scores_above_the_grid() -> None:
    # A head so sure of itself that positives and negatives differ only past 0.9999.
    params = StreamingParams(sample_rate=16_000, window_samples=1600, hop_samples=1600,
                             smoothing_windows=1, refractory_seconds=0.0)  # fmt: skip
    audio = np.zeros(1600 * 30, np.float32)
    spans = []
    for k in range(10):
        audio[1600 * (3 * k + 1) : 1600 * (3 * k + 2)] = 0.99999
        spans.append(((3 * k + 1) * 0.1, (3 * k + 2) * 0.1))
    quiet = np.zeros(16_000 * 10, np.float32)
    bank_stream = np.full(45_000, 0.5, np.float32)  # one hour of 80 ms hops
    bank_stream[::9_000] = 0.99995  # five near misses above the whole grid
    result = evaluate_streaming(
        lambda a: a[1599::1600], params, PositiveStream(audio, spans), [quiet],
        target_fa_per_hour=1.0, calibration=[bank_stream], calibration_hours=1.0,
    )  # fmt: skip
    assert 0.99995 < result.threshold <= 0.99999
    assert result.frr == 0.0 and result.false_accepts == 0
    assert result.calibration_hours == 1.0
    assert result.negative_hours == pytest.approx(1.0 + 10 / 3600)


def test_the_sweep_counts_misses_and_adds_false_accepts_over_separate_streams() -> None:
    params = StreamingParams(sample_rate=16_000, window_samples=1600, hop_samples=1600,
                             smoothing_windows=1, refractory_seconds=0.0)  # fmt: skip
    positive = np.array([0, 0.6, 0, 0, 0.9, 0], np.float32)  # hops end at 0.1 s, 0.2 s, ...
    spans = [(0.1, 0.2), (0.4, 0.5)]  # the two peaks, each inside its positive's window
    kitchen = np.array([0.7, 0, 0.95], np.float32)
    street = np.array([0.8], np.float32)
    curve = sweep(positive, spans, [kitchen, street], 0.5, params, [0.5, 0.75, 0.92, 0.99])
    assert [(p.threshold, p.missed, p.frr) for p in curve] == [
        (0.5, 0, 0.0), (0.75, 1, 0.5), (0.92, 2, 1.0), (0.99, 2, 1.0)
    ]  # fmt: skip
    assert [(p.false_accepts, p.fa_per_hour) for p in curve] == [
        (3, 6.0),
        (2, 4.0),
        (1, 2.0),
        (0, 0.0),
    ]
