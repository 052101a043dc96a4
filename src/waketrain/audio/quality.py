"""Per-clip quality metrics and a 0-100 score with the reasons for a low one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from waketrain.audio import vad
from waketrain.audio.constants import FRAME_SAMPLES, NEAR_SILENT_DBFS, SAMPLE_RATE_HZ

CLIPPING_LEVEL = 0.999


@dataclass(frozen=True)
class QualityMetrics:
    duration_seconds: float
    peak_dbfs: float
    rms_dbfs: float
    clipping_ratio: float
    snr_db: float
    speech_seconds: float
    # First and last speech chunk (VAD), so training can trim silence without rerunning it.
    speech_start_seconds: float | None
    speech_end_seconds: float | None
    score: int
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _dbfs(value: float) -> float:
    return float(20.0 * np.log10(max(value, 1e-10)))


def estimate_snr_db(samples: np.ndarray, speech_mask: np.ndarray | None = None) -> float:
    """Signal-to-noise ratio from frame energies: speech frames against the quiet floor."""
    n_frames = len(samples) // FRAME_SAMPLES
    if n_frames < 2:
        return 0.0
    frames = samples[: n_frames * FRAME_SAMPLES].reshape(n_frames, FRAME_SAMPLES)
    power = np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12  # (n_frames,)
    if speech_mask is not None and speech_mask.any() and (~speech_mask).any():
        signal, noise = power[speech_mask].mean(), np.percentile(power[~speech_mask], 50)
    else:
        # Without a speech/non-speech split, compare loud frames with the quiet floor.
        signal, noise = np.percentile(power, 95), np.percentile(power, 10)
    return float(10.0 * np.log10(signal / noise))


def _frame_speech_mask(probabilities: np.ndarray, n_frames: int) -> np.ndarray:
    """Map VAD chunk decisions onto the 20 ms energy frames, (n_frames,) bool."""
    chunk = vad.chunk_samples()
    frame_centres = (np.arange(n_frames) * FRAME_SAMPLES + FRAME_SAMPLES // 2) // chunk
    speech = probabilities >= vad.SPEECH_PROBABILITY
    inside = frame_centres < len(speech)
    mask = np.zeros(n_frames, dtype=bool)
    mask[inside] = speech[frame_centres[inside]]
    return mask


def measure_quality(samples: np.ndarray) -> QualityMetrics:
    """Measure a 16 kHz mono clip; the score starts at 100 and loses points per problem."""
    duration = len(samples) / SAMPLE_RATE_HZ
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0
    clipping_ratio = float(np.mean(np.abs(samples) >= CLIPPING_LEVEL)) if len(samples) else 0.0
    probabilities = vad.speech_probabilities(samples)
    speech_seconds = float(
        np.sum(probabilities >= vad.SPEECH_PROBABILITY) * vad.chunk_samples() / SAMPLE_RATE_HZ
    )
    speech_chunks = np.flatnonzero(probabilities >= vad.SPEECH_PROBABILITY)
    chunk_seconds = vad.chunk_samples() / SAMPLE_RATE_HZ
    speech_start = float(speech_chunks[0] * chunk_seconds) if len(speech_chunks) else None
    speech_end = float((speech_chunks[-1] + 1) * chunk_seconds) if len(speech_chunks) else None
    mask = _frame_speech_mask(probabilities, len(samples) // FRAME_SAMPLES)
    snr_db = estimate_snr_db(samples, mask)

    score, reasons = 100, []
    peak_dbfs, rms_dbfs = _dbfs(peak), _dbfs(rms)
    if rms_dbfs < NEAR_SILENT_DBFS:
        score -= 60
        reasons.append(f"near silent (RMS {rms_dbfs:.0f} dBFS)")
    elif peak_dbfs < -30.0:
        score -= 25
        reasons.append(f"very quiet (peak {peak_dbfs:.0f} dBFS); move closer or raise the gain")
    if clipping_ratio > 0.001:
        score -= 30
        reasons.append(f"clipped ({clipping_ratio:.1%} of samples at full scale); lower the gain")
    if snr_db < 10.0:
        score -= 20
        reasons.append(f"noisy (estimated SNR {snr_db:.0f} dB)")
    return QualityMetrics(
        duration_seconds=duration,
        peak_dbfs=round(peak_dbfs, 2),
        rms_dbfs=round(rms_dbfs, 2),
        clipping_ratio=round(clipping_ratio, 5),
        snr_db=round(snr_db, 2),
        speech_seconds=round(speech_seconds, 3),
        speech_start_seconds=speech_start,
        speech_end_seconds=speech_end,
        score=max(score, 0),
        reasons=reasons,
    )
