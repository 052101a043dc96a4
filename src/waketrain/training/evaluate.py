"""Honest evaluation: the exported model streamed over held-out audio exactly as on the board.

False accepts per hour come from one stream of all held-out negative audio; false rejects
from held-out positives framed by held-out background. Both use runtime.streaming, the code
the detector runs, so the threshold chosen here means the same thing on the board.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.runtime.streaming import StreamingParams, Trigger, hop_end_seconds

FRAME_SECONDS = 1.0  # background before and after each held-out positive
FRAME_SNR_DB = 20.0
# A job's own held-out positives are few: each is streamed twice, in quiet and in noise, so
# the threshold it picks is one that still hears the phrase at 10 dB SNR.
JOB_FRAME_SNRS_DB = (20.0, 10.0)
# A fixed grid for tables and plots. A job's own search adds every score at which the
# trade-off changes (candidate_thresholds), since a head over speech embeddings is very sure
# of itself and its useful thresholds can all sit above the grid's last step.
THRESHOLDS = np.round(
    np.concatenate(
        [
            np.arange(0.05, 0.9, 0.01),
            np.arange(0.9, 0.9995, 0.0025),
            [0.999, 0.9995, 0.9998, 0.9999],
        ]
    ),
    4,
)


@dataclass
class OperatingPoint:
    threshold: float
    frr: float
    fa_per_hour: float
    false_accepts: int
    missed: int


CONFIDENCE = 0.95


def fa_upper_bound(false_accepts: int, hours: float) -> float:
    """One-sided 95 % upper bound on the false-accept rate (exact Poisson, per hour).

    Zero false accepts in 20 minutes is "< 9 per hour", not "0".
    """
    from scipy.stats import chi2

    return float(chi2.ppf(CONFIDENCE, 2 * (false_accepts + 1)) / 2 / max(hours, 1e-12))


def hours_to_decide(false_accepts: int, hours: float, target_fa_per_hour: float) -> float:
    """More hours of negative audio, at the same count, after which the bound meets the target."""
    return max(0.0, fa_upper_bound(false_accepts, 1.0) / target_fa_per_hour - hours)


@dataclass(frozen=True)
class FalseAccepts:
    """A false-accept figure with what it rests on: the count, the hours, the 95 % bound."""

    count: int
    hours: float

    @property
    def per_hour(self) -> float:
        return self.count / self.hours if self.hours > 0 else float("inf")

    @property
    def upper_bound(self) -> float:
        return fa_upper_bound(self.count, self.hours)

    def describe(self) -> str:
        """'2 in 1.50 h: 1.3/h (95 % bound < 3.2/h)'."""
        return (
            f"{self.count} in {self.hours:.2f} h: {self.per_hour:.1f}/h "
            f"(95 % bound < {self.upper_bound:.1f}/h)"
        )


@dataclass
class EvaluationResult:
    threshold: float
    target_fa_per_hour: float
    target_met: bool  # the 95 % upper bound meets the target, not just the count
    note: str
    frr: float
    fa_per_hour: float
    false_accepts: int
    fa_per_hour_upper: float
    hours_to_decide: float  # more negative audio that would settle the target (0 when settled)
    calibration_hours: float  # of negative_hours, from the negative bank
    auc: float
    accuracy: float
    confusion: dict[str, int]  # at the threshold, clip level
    positives: int
    negative_clips: int
    negative_hours: float
    curve: list[OperatingPoint] = field(default_factory=list)
    # per positive span, in frame_positives order: its peak score, and whether it was heard
    positive_peaks: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    positive_heard: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


@dataclass
class PositiveStream:
    audio: np.ndarray
    spans: list[tuple[float, float]]  # (start, end) seconds of each positive in the stream


def frame_positives(
    positives: list[np.ndarray],
    background: list[np.ndarray],
    seed: int,
    snr_db: float | Sequence[float] = FRAME_SNR_DB,
) -> PositiveStream:
    """Each positive with a second of held-out background before and after, in one stream.

    With several SNRs, every positive appears once at each.
    """
    rng = np.random.default_rng(seed)
    pad = int(FRAME_SECONDS * SAMPLE_RATE_HZ)
    parts, spans, cursor = [], [], 0
    levels = [snr_db] if isinstance(snr_db, float | int) else list(snr_db)
    for level, clip in itertools.product(levels, positives):
        total = pad + len(clip) + pad
        bed = np.zeros(total, np.float32)
        if background:
            source = background[rng.integers(len(background))]
            if len(source) < total:
                source = np.tile(source, total // max(len(source), 1) + 1)
            start = rng.integers(0, len(source) - total + 1)
            noise = source[start : start + total]
            signal_power = max(float(np.mean(clip**2)), 1e-10)
            noise_power = max(float(np.mean(noise**2)), 1e-10)
            bed = noise * np.sqrt(signal_power / (noise_power * 10 ** (level / 10)))
        bed[pad : pad + len(clip)] += clip
        parts.append(bed.astype(np.float32))
        spans.append(((cursor + pad) / SAMPLE_RATE_HZ, (cursor + pad + len(clip)) / SAMPLE_RATE_HZ))
        cursor += total
    return PositiveStream(np.concatenate(parts), spans)


def trigger_times(smoothed: np.ndarray, threshold: float, params: StreamingParams) -> np.ndarray:
    """Stream times (end of window, seconds) at which the trigger fires."""
    fired = Trigger(threshold, params.refractory_hops).update(smoothed)
    return hop_end_seconds(len(smoothed), params)[np.array(fired, dtype=np.int64)]


def detected(
    times: np.ndarray, spans: list[tuple[float, float]], window_seconds: float
) -> np.ndarray:
    """Whether each positive was detected: a trigger while its window overlaps the phrase."""
    return np.array(
        [np.any((times >= start) & (times <= end + window_seconds)) for start, end in spans],
        dtype=bool,
    )


def sweep(
    positive_scores: np.ndarray,
    spans: list[tuple[float, float]],
    negative_scores: list[np.ndarray],
    negative_hours: float,
    params: StreamingParams,
    thresholds: Iterable[float],
) -> list[OperatingPoint]:
    """FRR and false accepts at each threshold, from scores already streamed.

    `negative_scores` are separate streams (one per folder, or all audio as one); their
    false accepts add up.
    """
    window_seconds = params.window_samples / params.sample_rate
    curve = []
    for threshold in thresholds:
        hits = detected(trigger_times(positive_scores, threshold, params), spans, window_seconds)
        false_accepts = sum(len(trigger_times(s, threshold, params)) for s in negative_scores)
        curve.append(
            OperatingPoint(
                threshold=float(threshold),
                frr=float(1 - hits.mean()),
                fa_per_hour=false_accepts / negative_hours,
                false_accepts=false_accepts,
                missed=int((~hits).sum()),
            )
        )
    return curve


def candidate_thresholds(
    positive_peaks: np.ndarray, negative_scores: list[np.ndarray], most: int = 500
) -> np.ndarray:
    """Every threshold at which the trade-off can change, over the model's whole score range.

    FRR changes only at a positive's peak score and false accepts only just above a
    negative score, so the grid is joined by each positive's peak and a threshold just
    above each of the `most` highest negative scores.
    """
    negatives = np.concatenate(
        [s.astype(np.float32) for s in negative_scores] or [np.zeros(0, np.float32)]
    )
    highest = np.unique(negatives)[-most:].astype(np.float32)
    just_above = np.nextafter(highest, np.float32(np.inf))
    # float32 values, as the scores are: the detector, the API and a reader of metadata.json
    # then agree on which score reaches the threshold.
    grid = THRESHOLDS.astype(np.float32)
    candidates = np.concatenate([grid, positive_peaks.astype(np.float32), just_above])
    return np.unique(candidates[(candidates > 0) & (candidates <= 1)]).astype(np.float64)


ThresholdChoice = Literal["midway", "highest"]


def choose_within(points: list[OperatingPoint], choice: ThresholdChoice) -> OperatingPoint:
    """One of the thresholds that all meet the target at the same recall.

    highest: the most margin against false accepts, but right at the weakest positive's
    peak, where a voice a little quieter than any validation clip is missed. midway: the
    point nearest the log-odds midpoint of the lowest and the highest (scores crowd toward
    1, so halfway in probability would hug the positives), as far from the negative audio's
    highest scores as from the weakest positive's peak.
    """
    highest = max(points, key=lambda p: p.threshold)
    if choice == "highest":
        return highest
    lowest = min(points, key=lambda p: p.threshold)
    middle = (log_odds(lowest.threshold) + log_odds(highest.threshold)) / 2
    return min(points, key=lambda p: abs(log_odds(p.threshold) - middle))


def log_odds(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def clips_that_fire(
    score_audio: Callable[[np.ndarray], np.ndarray], clips: list[np.ndarray], threshold: float
) -> int:
    """How many clips, each streamed on its own from silence, make the trigger fire."""
    return sum(bool(np.any(score_audio(clip) >= threshold)) for clip in clips)


def auc_score(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U), ties counted half."""
    if len(positive) == 0 or len(negative) == 0:
        return float("nan")
    scores = np.concatenate([positive, negative])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    u = ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2
    return float(u / (len(positive) * len(negative)))


def evaluate_streaming(
    score_audio: Callable[[np.ndarray], np.ndarray],
    params: StreamingParams,
    positives: PositiveStream,
    negatives: list[np.ndarray],
    target_fa_per_hour: float,
    frr_tolerance: float = 0.0,
    calibration: Sequence[np.ndarray] = (),
    calibration_hours: float = 0.0,
    choice: ThresholdChoice = "midway",
) -> EvaluationResult:
    """Sweep thresholds over streamed scores; pick the lowest FRR with FA/h within target.

    False accepts are counted on the held-out negative clips streamed as one recording and
    on `calibration`: smoothed score streams of the negative bank's calibration sources
    (`calibration_hours` of audio), scored as the board scores. The thresholds within the
    target whose FRR is at most `frr_tolerance` above the lowest form a range; `choice`
    says which of them: see `choose_within`.
    The target counts as met only when the 95 % upper bound of the rate meets it.

    `score_audio` streams a recording through the exported model exactly as the board does
    and returns the smoothed score of every hop (every backend provides one).
    """
    window_seconds = params.window_samples / params.sample_rate
    pos_scores = score_audio(positives.audio)
    negative_audio = np.concatenate(negatives) if negatives else np.zeros(0, np.float32)
    neg_scores = score_audio(negative_audio)
    hours = len(negative_audio) / SAMPLE_RATE_HZ / 3600 + calibration_hours
    if hours <= 0:
        raise ValueError("no negative audio to count false accepts on")
    pos_times = hop_end_seconds(len(pos_scores), params)
    peak_per_positive = np.array(
        [
            pos_scores[(pos_times >= start) & (pos_times <= end + window_seconds)].max(initial=0.0)
            for start, end in positives.spans
        ]
    )
    streams = [neg_scores, *calibration]
    candidates = candidate_thresholds(peak_per_positive, streams)
    curve = sweep(pos_scores, positives.spans, streams, hours, params, candidates)
    meeting = [p for p in curve if p.fa_per_hour <= target_fa_per_hour]
    minutes = f"{hours * 60:.1f} min of held-out negative audio" + (
        f" ({calibration_hours * 60:.1f} min of it from the negative bank)"
        if calibration_hours
        else ""
    )
    if meeting:
        lowest = min(p.frr for p in meeting)
        near = [p for p in meeting if p.frr <= lowest + frr_tolerance + 1e-9]
        best = choose_within(near, choice)
        where = "Highest threshold" if choice == "highest" else "Threshold midway between those"
        note = (
            f"{where} within {frr_tolerance:.0%} of the lowest false-reject rate "
            f"({lowest:.1%}) with at most {target_fa_per_hour:g} false accepts per hour over "
            f"{minutes}."
        )
    else:
        best = min(curve, key=lambda p: (p.fa_per_hour, p.frr))
        note = (
            f"No threshold reaches {target_fa_per_hour:g} false accepts per hour over {minutes}; "
            f"the threshold with the fewest ({best.fa_per_hour:.1f}/h) was chosen. "
            "Add negative recordings (speech, TV, household noise) and train again."
        )
    measured = FalseAccepts(best.false_accepts, hours)
    more_hours = hours_to_decide(measured.count, hours, target_fa_per_hour)
    target_met = measured.upper_bound <= target_fa_per_hour
    note += f" False accepts: {measured.describe()}."
    if not target_met and meeting:
        note += (
            f" Too little audio to claim the target: about {more_hours:.1f} h more negative "
            "audio in the negative bank (waketrain negatives add) would decide it."
        )

    # Clip-level view at the chosen threshold: ROC AUC and a confusion matrix.
    neg_times = hop_end_seconds(len(neg_scores), params)
    bounds = np.cumsum([0] + [len(n) for n in negatives]) / SAMPLE_RATE_HZ
    peak_per_negative = np.array(
        [
            neg_scores[(neg_times > lo) & (neg_times <= hi + window_seconds)].max(initial=0.0)
            for lo, hi in itertools.pairwise(bounds)
        ]
    )
    true_pos = int((peak_per_positive >= best.threshold).sum())
    false_pos = int((peak_per_negative >= best.threshold).sum())
    confusion = {
        "true_positive": true_pos,
        "false_negative": len(peak_per_positive) - true_pos,
        "false_positive": false_pos,
        "true_negative": len(peak_per_negative) - false_pos,
    }
    total = len(peak_per_positive) + len(peak_per_negative)
    heard = detected(trigger_times(pos_scores, best.threshold, params), positives.spans,
                     window_seconds)  # fmt: skip
    return EvaluationResult(
        threshold=best.threshold,
        target_fa_per_hour=target_fa_per_hour,
        target_met=target_met,
        note=note,
        frr=best.frr,
        fa_per_hour=best.fa_per_hour,
        false_accepts=measured.count,
        fa_per_hour_upper=measured.upper_bound,
        hours_to_decide=more_hours,
        calibration_hours=calibration_hours,
        auc=auc_score(peak_per_positive, peak_per_negative),
        accuracy=(confusion["true_positive"] + confusion["true_negative"]) / total,
        confusion=confusion,
        positives=len(positives.spans),
        negative_clips=len(negatives),
        negative_hours=hours,
        curve=curve,
        positive_peaks=peak_per_positive,
        positive_heard=heard,
    )
