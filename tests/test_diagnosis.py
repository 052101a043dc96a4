"""The operator is told which held-out voices were missed, and why."""

from __future__ import annotations

import numpy as np

from waketrain.training.data import Example
from waketrain.training.diagnosis import Level, missed_positives

SNRS = (20.0, 10.0)


def examples(n: int) -> list[Example]:
    return [Example(f"clip-{i}", "positive", f"speaker-{i}", np.zeros(1, np.float32))
            for i in range(n)]  # fmt: skip


def test_each_missed_clip_gets_the_cause_its_levels_and_scores_point_to() -> None:
    clips = examples(5)
    # Spans: the five clips at 20 dB, then the same five at 10 dB.
    peaks = np.array([0.99, 0.40, 0.30, 0.95, 0.20, 0.99, 0.35, 0.25, 0.60, 0.10])
    heard = peaks >= 0.9
    levels = {
        "clip-0": Level(-6.0, -20.0, 0.0),  # heard everywhere: not listed
        "clip-1": Level(0.0, -8.0, 0.02),  # clipped
        "clip-2": Level(-28.0, -45.0, 0.0),  # very quiet
        "clip-3": Level(-6.0, -20.0, 0.0),  # heard in quiet only
        "clip-4": Level(-6.0, -20.0, 0.0),  # an ordinary recording, never heard
    }
    missed = missed_positives(clips, SNRS, peaks, heard, 0.9, levels)
    by_id = {m.clip_id: m for m in missed}
    assert set(by_id) == {"clip-1", "clip-2", "clip-3", "clip-4"}
    assert [m.clip_id for m in missed] == ["clip-4", "clip-2", "clip-1", "clip-3"]  # worst first
    assert by_id["clip-1"].cause.startswith("clipped")
    assert by_id["clip-2"].cause.startswith("recorded very quietly")
    assert by_id["clip-3"].cause.startswith("lost in background noise")
    assert by_id["clip-3"].missed_at == ["10 dB"]
    assert by_id["clip-4"].cause.startswith("a voice")
    assert by_id["clip-4"].scores == {"20 dB": 0.2, "10 dB": 0.1}
    assert by_id["clip-4"].speaker == "speaker-4"
    assert "just under" not in by_id["clip-4"].cause


def test_a_peak_near_the_threshold_is_called_just_under_it() -> None:
    clips = examples(1)
    peaks, heard = np.array([0.985, 0.97]), np.array([False, False])
    missed = missed_positives(clips, SNRS, peaks, heard, 0.9875, {})
    assert "just under the threshold" in missed[0].cause
    assert missed[0].peak_dbfs is None  # synthetic examples have no ingest levels


def test_a_clip_missed_in_quiet_but_heard_in_noise_is_not_blamed_on_noise() -> None:
    missed = missed_positives(examples(1), SNRS, np.array([0.5, 0.95]), np.array([False, True]),
                              0.9, {})  # fmt: skip
    assert missed[0].missed_at == ["20 dB"]
    assert missed[0].cause.startswith("a voice")
