"""Which held-out positives a model missed, the likely reason, and what to record next.

An average FRR hides the voice that is not heard. Each held-out positive is streamed at
every framing SNR (evaluate.JOB_FRAME_SNRS_DB); a clip missed at any of them is listed with
its peak score there, the level and clipping measured at ingest, and a cause read from
those: clipped, very quiet, lost in noise, or a voice the model has not learned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sqlalchemy import select

from waketrain.store.models import Clip
from waketrain.store.registry import Registry
from waketrain.training.data import Example
from waketrain.training.evaluate import log_odds

CLIPPED_RATIO = 0.001  # share of samples at full scale that makes a recording clipped
CLIPPED_PEAK_DBFS = -0.1
QUIET_RMS_DBFS = -40.0
QUIET_PEAK_DBFS = -20.0
NEAR_LOG_ODDS = 1.0  # a peak this close to the threshold (log-odds) is "just under" it


@dataclass(frozen=True)
class Level:
    """What ingest measured of a clip."""

    peak_dbfs: float | None
    rms_dbfs: float | None
    clipping_ratio: float | None


@dataclass(frozen=True)
class MissedClip:
    clip_id: str
    speaker: str | None
    scores: dict[str, float]  # framing SNR ("20 dB") -> the clip's peak score there
    missed_at: list[str]  # the framing SNRs at which it was not heard
    peak_dbfs: float | None
    rms_dbfs: float | None
    clipping_ratio: float | None
    cause: str
    advice: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def describe(self) -> str:
        who = f" ({self.speaker})" if self.speaker else ""
        return f"clip {self.clip_id}{who}, missed at {', '.join(self.missed_at)}: {self.cause}"


def clip_levels(registry: Registry, clip_ids: Sequence[str]) -> dict[str, Level]:
    """Ingest's level figures of the given clips (synthetic examples have none)."""
    with registry.sessions() as session:
        rows = session.execute(
            select(Clip.id, Clip.peak_dbfs, Clip.rms_dbfs, Clip.clipping_ratio).where(
                Clip.id.in_(list(clip_ids))
            )
        ).all()
    return {row.id: Level(row.peak_dbfs, row.rms_dbfs, row.clipping_ratio) for row in rows}


def missed_positives(
    positives: Sequence[Example],
    snrs_db: Sequence[float],
    peaks: np.ndarray,
    heard: np.ndarray,
    threshold: float,
    levels: dict[str, Level],
) -> list[MissedClip]:
    """The clips not heard at some SNR, from the evaluation's per-span peaks and verdicts.

    Spans are ordered as evaluate.frame_positives lays them out: every positive at the
    first SNR, then every positive at the next.
    """
    n = len(positives)
    if len(peaks) != n * len(snrs_db) or len(heard) != len(peaks):
        raise ValueError("one peak and one verdict per positive and SNR expected")
    at = [f"{snr:g} dB" for snr in snrs_db]
    snrs = np.asarray(snrs_db)
    by_snr_peaks = np.asarray(peaks).reshape(len(at), n)
    by_snr_heard = np.asarray(heard, bool).reshape(len(at), n)
    missed = []
    for i, example in enumerate(positives):
        scores = {name: float(p) for name, p in zip(at, by_snr_peaks[:, i], strict=True)}
        was_heard = by_snr_heard[:, i]
        lost = [name for name, h in zip(at, was_heard, strict=True) if not h]
        if not lost:
            continue
        # Noise is to blame only when every SNR it was missed at is noisier than every one
        # it was heard at.
        in_noise = bool(was_heard.any() and snrs[~was_heard].max() < snrs[was_heard].min())
        level = levels.get(example.clip_id, Level(None, None, None))
        cause, advice = _cause(level, lost, in_noise, min(scores.values()), threshold)
        missed.append(
            MissedClip(
                example.clip_id,
                example.speaker,
                scores,
                lost,
                level.peak_dbfs,
                level.rms_dbfs,
                level.clipping_ratio,
                cause,
                advice,
            )
        )
    return sorted(missed, key=lambda m: min(m.scores.values()))


def _cause(
    level: Level, lost: list[str], in_noise: bool, score: float, threshold: float
) -> tuple[str, str]:
    near = log_odds(threshold) - log_odds(score) <= NEAR_LOG_ODDS
    just = f" (peak {score:.4g}, just under the threshold {threshold:.4g})" if near else ""
    if (level.clipping_ratio or 0.0) >= CLIPPED_RATIO or (
        level.peak_dbfs is not None and level.peak_dbfs >= CLIPPED_PEAK_DBFS
    ):
        return (
            f"clipped: the recording hits full scale{just}",
            "Record a few positives loud and close to the microphone, as this one was, "
            "so the model learns overdriven voices; keep this clip.",
        )
    if (level.rms_dbfs is not None and level.rms_dbfs <= QUIET_RMS_DBFS) or (
        level.peak_dbfs is not None and level.peak_dbfs <= QUIET_PEAK_DBFS
    ):
        return (
            f"recorded very quietly{just}",
            "Record positives from across the room and in a low voice, so the model hears "
            "quiet and distant speakers.",
        )
    if in_noise:
        return (
            f"lost in background noise: heard in quiet, missed at {', '.join(lost)}{just}",
            "Record positives with the television, music or kitchen noise on.",
        )
    return (
        f"a voice or way of saying the phrase the model has not learned{just}",
        "Record more positives from this speaker and from others who sound like them "
        "(age, accent, speed).",
    )
