"""Cut a long recording into phrase-sized pieces where the VAD hears speech.

A family member says the phrase ten times in one recording; each utterance becomes a clip.
Pauses shorter than a breath stay inside a phrase ("hey ... tars"), very short blips are
dropped, and each piece keeps a little silence on both sides, as a recorded clip would.
"""

from __future__ import annotations

import numpy as np

from waketrain.audio import vad
from waketrain.audio.constants import SAMPLE_RATE_HZ

JOIN_GAP_SECONDS = 0.35  # a pause shorter than this stays inside one phrase
MIN_SPEECH_SECONDS = 0.25  # speech shorter than this is a click or a breath
PAD_SECONDS = 0.25  # silence kept before and after each phrase


def phrase_segments(samples: np.ndarray, max_seconds: float) -> list[tuple[float, float]]:
    """(start, end) seconds of each phrase in 16 kHz audio, in order, none longer than
    `max_seconds` and none overlapping its neighbours."""
    probabilities = vad.speech_probabilities(samples)
    step = vad.chunk_samples() / SAMPLE_RATE_HZ
    duration = len(samples) / SAMPLE_RATE_HZ
    runs: list[list[float]] = []
    for i in np.flatnonzero(probabilities >= vad.SPEECH_PROBABILITY):
        start, end = float(i) * step, float(i + 1) * step
        if runs and start - runs[-1][1] < JOIN_GAP_SECONDS:
            runs[-1][1] = end
        else:
            runs.append([start, end])
    speech = [(s, e) for s, e in runs if e - s >= MIN_SPEECH_SECONDS]
    segments = []
    for k, (start, end) in enumerate(speech):
        before = speech[k - 1][1] if k else 0.0
        after = speech[k + 1][0] if k + 1 < len(speech) else duration
        lo = max(start - PAD_SECONDS, (before + start) / 2, 0.0)
        hi = min(end + PAD_SECONDS, (end + after) / 2, duration)
        while hi - lo > max_seconds:  # a long monologue: cut into pieces that fit a clip
            segments.append((round(lo, 3), round(lo + max_seconds, 3)))
            lo += max_seconds
        segments.append((round(lo, 3), round(hi, 3)))
    return segments
