"""Datasets: create, look up, list."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from waketrain.store.errors import Conflict
from waketrain.store.events import record_audit, record_event
from waketrain.store.health import DatasetSummary, dataset_summaries, dataset_summary
from waketrain.store.layout import validate_dataset_id
from waketrain.store.models import Dataset
from waketrain.store.projections import write_projections
from waketrain.store.registry import Registry


class DatasetCreate(BaseModel):
    id: str = Field(description="Slug: lowercase letters, digits and dashes.")
    phrase: str = Field(min_length=1, max_length=200, description="The wake phrase, as spoken.")
    description: str | None = Field(default=None, max_length=2000)

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return validate_dataset_id(value)

    @field_validator("phrase")
    @classmethod
    def _phrase_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the wake phrase must not be blank")
        return value.strip()


def create_dataset(registry: Registry, spec: DatasetCreate, actor: str) -> DatasetSummary:
    with registry.sessions.begin() as session:
        if session.get(Dataset, spec.id) is not None:
            raise Conflict(f"A dataset with id {spec.id!r} already exists.")
        session.add(
            Dataset(id=spec.id, phrase=spec.phrase, description=spec.description, created_by=actor)
        )
        record_event(session, "dataset.created", {"phrase": spec.phrase}, dataset_id=spec.id)
        record_audit(session, actor, "create", "dataset", spec.id, {"phrase": spec.phrase})
    registry.layout.clips_dir(spec.id).mkdir(parents=True, exist_ok=True)
    write_projections(registry, spec.id)
    return dataset_summary(registry, spec.id)


def ensure_default_dataset(registry: Registry) -> None:
    """The dataset an operator finds on first start."""
    s = registry.settings
    with registry.sessions() as session:
        if session.get(Dataset, s.default_dataset_id) is not None:
            return
    create_dataset(
        registry, DatasetCreate(id=s.default_dataset_id, phrase=s.default_phrase), "system"
    )


def list_datasets(registry: Registry) -> list[DatasetSummary]:
    """Every dataset, oldest first."""
    return dataset_summaries(registry)
