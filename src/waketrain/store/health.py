"""Dataset health: counts, minutes, balance and quality flags (what the operator reviews)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import func, select

from waketrain.audio.constants import NEAR_SILENT_DBFS
from waketrain.store.errors import NotFound
from waketrain.store.gate import dataset_gate
from waketrain.store.layout import validate_dataset_id
from waketrain.store.models import Capture, Clip, Dataset, Event, Job
from waketrain.store.registry import Registry

LOW_QUALITY_SCORE = 60
REVIEW_EVENTS = ("clip.updated", "clip.deleted", "clip.restored")
# Positives should be between a quarter and three quarters of the clips.
BALANCE_RANGE = (0.25, 0.75)


class LabelCounts(BaseModel):
    positive: int = 0
    negative: int = 0
    noise: int = 0


class LabelMinutes(BaseModel):
    positive: float = 0.0
    negative: float = 0.0
    noise: float = 0.0


class QualityFlags(BaseModel):
    analyzed: int
    pending_analysis: int
    low_quality: int = Field(description=f"Clips scoring below {LOW_QUALITY_SCORE}.")
    clipped: int
    near_silent: int
    positives_without_speech: int = Field(
        description="Positives in which the VAD heard no speech: trained on as they are; "
        "listen to them."
    )
    duplicate_clips: int = Field(description="Clips whose audio is identical to another's.")


class Balance(BaseModel):
    positive_share: float | None
    warning: str | None


class DatasetSummary(BaseModel):
    id: str
    phrase: str
    description: str | None
    created_at: datetime
    created_by: str
    clip_counts: LabelCounts
    deleted_clips: int
    minutes: LabelMinutes
    total_minutes: float
    balance: Balance
    mean_snr_db: float | None
    quality: QualityFlags
    last_reviewed_by: str | None
    last_reviewed_at: datetime | None
    ready_to_train: bool
    training_blockers: list[str]
    last_job: dict[str, object] | None = Field(
        default=None, description="The newest training job: id, status, when, metrics."
    )
    captures_to_review: int = Field(
        default=0, description="Captures from the board waiting for a verdict."
    )


def require_dataset(registry: Registry, dataset_id: str) -> Dataset:
    """The dataset row, or NotFound with what to do."""
    validate_dataset_id(dataset_id)
    with registry.sessions() as session:
        dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"No dataset {dataset_id!r}. Create it first (POST /datasets).")
    return dataset


def dataset_summaries(
    registry: Registry, dataset_ids: list[str] | None = None
) -> list[DatasetSummary]:
    """The summaries of these datasets (all of them, oldest first, by default), each computed
    again only when an event has touched its dataset since (every change to clips, captures,
    jobs or the dataset writes one), so a dashboard polled by many clients costs one query,
    not a pass over every clip."""
    newest_event = (
        select(func.max(Event.id)).where(Event.dataset_id == Dataset.id).scalar_subquery()
    )
    query = select(Dataset.id, newest_event).order_by(Dataset.created_at)
    if dataset_ids is not None:
        query = query.where(Dataset.id.in_(dataset_ids))
    with registry.sessions() as session:
        versions = session.execute(query).all()
    cache: dict[str, tuple[int, DatasetSummary]] = registry.memo.setdefault("summaries", {})
    summaries = []
    for dataset_id, version in versions:
        cached = cache.get(dataset_id)
        if cached is None or cached[0] != (version or 0):
            cached = (version or 0, _summary(registry, dataset_id))
            cache[dataset_id] = cached
        summaries.append(cached[1])
    return summaries


def dataset_summary(registry: Registry, dataset_id: str) -> DatasetSummary:
    """Counts, minutes, balance and quality of the clips that are not deleted."""
    require_dataset(registry, dataset_id)
    return dataset_summaries(registry, [dataset_id])[0]


def _summary(registry: Registry, dataset_id: str) -> DatasetSummary:
    dataset = require_dataset(registry, dataset_id)
    active = (Clip.dataset_id == dataset_id) & Clip.deleted_at.is_(None)
    with registry.sessions() as session:
        per_label = session.execute(
            select(Clip.label, func.count(), func.sum(Clip.duration_seconds))
            .where(active)
            .group_by(Clip.label)
        ).all()
        deleted = session.scalar(
            select(func.count()).where(Clip.dataset_id == dataset_id, Clip.deleted_at.is_not(None))
        )
        analyzed, mean_snr = session.execute(
            select(func.count(Clip.analyzed_at), func.avg(Clip.snr_db)).where(active)
        ).one()
        to_review = session.scalar(
            select(func.count()).where(
                Capture.dataset_id == dataset_id, Capture.status == "unreviewed"
            )
        )

        def count(condition: object) -> int:
            return session.scalar(select(func.count()).where(active, condition)) or 0  # type: ignore[arg-type]

        low_quality = count(Clip.quality_score < LOW_QUALITY_SCORE)
        clipped = count(Clip.clipping_ratio > 0.001)
        near_silent = count(Clip.rms_dbfs < NEAR_SILENT_DBFS)
        duplicate_hashes = (
            select(Clip.sha256).where(active).group_by(Clip.sha256).having(func.count() > 1)
        ).subquery()
        duplicates = count(Clip.sha256.in_(select(duplicate_hashes.c.sha256)))
        newest_job = session.scalars(
            select(Job).where(Job.dataset_id == dataset_id).order_by(Job.created_at.desc()).limit(1)
        ).first()
        last_review = session.scalars(
            select(Event)
            .where(Event.dataset_id == dataset_id, Event.type.in_(REVIEW_EVENTS))
            .order_by(Event.id.desc())
            .limit(1)
        ).first()

    counts, minutes = LabelCounts(), LabelMinutes()
    for label, n, seconds in per_label:
        setattr(counts, label, n)
        setattr(minutes, label, round((seconds or 0.0) / 60.0, 3))
    total = counts.positive + counts.negative + counts.noise
    share = counts.positive / total if total else None
    warning = None
    if share is not None and not BALANCE_RANGE[0] <= share <= BALANCE_RANGE[1]:
        warning = (
            f"Unbalanced: {share:.0%} of the clips are positive; "
            f"aim for {BALANCE_RANGE[0]:.0%}-{BALANCE_RANGE[1]:.0%}."
        )
    gate = dataset_gate(registry, dataset_id)
    settings = registry.settings
    blockers = gate.blockers(settings.min_positive_clips, settings.min_negative_clips)
    return DatasetSummary(
        id=dataset.id,
        phrase=dataset.phrase,
        description=dataset.description,
        created_at=dataset.created_at,
        created_by=dataset.created_by,
        clip_counts=counts,
        deleted_clips=deleted or 0,
        minutes=minutes,
        total_minutes=round(minutes.positive + minutes.negative + minutes.noise, 3),
        balance=Balance(positive_share=share, warning=warning),
        mean_snr_db=round(mean_snr, 2) if mean_snr is not None else None,
        quality=QualityFlags(
            analyzed=analyzed,
            pending_analysis=total - analyzed,
            low_quality=low_quality,
            clipped=clipped,
            near_silent=near_silent,
            positives_without_speech=len(gate.doubted),
            duplicate_clips=duplicates,
        ),
        last_reviewed_by=last_review.payload.get("actor") if last_review else None,
        last_reviewed_at=last_review.created_at if last_review else None,
        ready_to_train=not blockers,
        captures_to_review=to_review or 0,
        last_job=(
            {
                "id": newest_job.id,
                "status": newest_job.status,
                "created_at": newest_job.created_at.isoformat(),
                "metrics": newest_job.metrics,
            }
            if newest_job
            else None
        ),
        training_blockers=blockers,
    )
