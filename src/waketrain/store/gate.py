"""The training gate in one place: which clips a job uses, and whether a dataset can train.

The dataset summary (and so the Train button), the job queue and the data preparation all
call these rules, so a dataset the UI offers to train is one that trains. A clip is left out
only for a reason the operator can check (near silent, a duplicate); a positive in which the
VAD heard no speech is trained on as it is and listed, never silently dropped: a clean
recording from a thin microphone can fool the VAD, and the operator said it is the phrase.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select

from waketrain.audio.constants import NEAR_SILENT_DBFS
from waketrain.store.models import Clip
from waketrain.store.registry import Registry

NO_SPEECH_SECONDS = 0.1  # less VAD speech than this in a positive: the VAD doubts it


class ClipFacts(Protocol):
    id: str
    label: str
    sha256: str
    rms_dbfs: float | None
    speech_seconds: float | None


@dataclass(frozen=True)
class ClipNote:
    clip_id: str
    reason: str


@dataclass
class GateReport:
    usable: list[str] = field(default_factory=list)  # clip ids, in the order given
    labels: dict[str, str] = field(default_factory=dict)  # usable clip id -> label
    skipped: list[ClipNote] = field(default_factory=list)
    doubted: list[ClipNote] = field(default_factory=list)  # used, untrimmed, and shown

    def count(self, *labels: str) -> int:
        return sum(label in labels for label in self.labels.values())

    def blockers(self, min_positive: int, min_negative: int) -> list[str]:
        """What stands between the dataset and a job, in words; empty when it can train."""
        skipped = (
            f" ({len(self.skipped)} left out: near silent or duplicate)" if self.skipped else ""
        )
        problems = []
        if (positives := self.count("positive")) < min_positive:
            problems.append(
                f"{positives} usable positive clips{skipped}; training needs at least "
                f"{min_positive}."
            )
        if (others := self.count("negative", "noise")) < min_negative:
            problems.append(
                f"{others} usable negative + noise clips{skipped}; training needs at least "
                f"{min_negative}."
            )
        return problems


def review_clips(clips: Iterable[ClipFacts]) -> GateReport:
    """Apply the rules to clips in the order given (the first of identical clips is kept)."""
    report = GateReport()
    seen: dict[str, str] = {}  # sha256 -> first clip id
    for clip in clips:
        if clip.sha256 in seen:
            report.skipped.append(ClipNote(clip.id, f"duplicate of clip {seen[clip.sha256]}"))
            continue
        seen[clip.sha256] = clip.id
        if clip.rms_dbfs is not None and clip.rms_dbfs < NEAR_SILENT_DBFS:
            report.skipped.append(ClipNote(clip.id, f"near silent (RMS {clip.rms_dbfs:.0f} dBFS)"))
            continue
        speech = clip.speech_seconds
        if clip.label == "positive" and speech is not None and speech < NO_SPEECH_SECONDS:
            report.doubted.append(
                ClipNote(
                    clip.id,
                    f"the VAD heard {speech:.2f} s of speech; trained on as it is (untrimmed): "
                    "listen to it and delete it if it is not the phrase",
                )
            )
        report.usable.append(clip.id)
        report.labels[clip.id] = clip.label
    return report


def active_clips(registry: Registry, dataset_id: str) -> list[Clip]:
    """The dataset's clips that are not deleted, oldest first (the gate's order)."""
    with registry.sessions() as session:
        return list(
            session.scalars(
                select(Clip)
                .where(Clip.dataset_id == dataset_id, Clip.deleted_at.is_(None))
                .order_by(Clip.created_at, Clip.id)
            )
        )


def dataset_gate(registry: Registry, dataset_id: str) -> GateReport:
    return review_clips(active_clips(registry, dataset_id))
