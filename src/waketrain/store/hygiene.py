"""Dataset hygiene: clips whose audio is identical, and the same audio under two labels.

Training keeps the first of identical clips (store/gate.py) and drops the rest quietly; a
label conflict then decides the label by upload order. Here the operator sees each group and
keeps one clip of it: the others are soft-deleted (restorable, audited) like any deletion.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, computed_field
from sqlalchemy import func, select

from waketrain.store.clips import ClipRecord, delete_clip
from waketrain.store.errors import InvalidInput, NotFound
from waketrain.store.health import require_dataset
from waketrain.store.models import Clip
from waketrain.store.registry import Registry


class DuplicateGroup(BaseModel):
    sha256: str
    clips: list[ClipRecord] = Field(description="Oldest first: training keeps the first.")
    labels: list[str] = Field(description="The labels the group's clips carry, sorted.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def conflict(self) -> bool:
        """The same audio under different labels: training would use the first one's."""
        return len(self.labels) > 1


class Hygiene(BaseModel):
    groups: list[DuplicateGroup]
    left_out: int = Field(description="Clips training leaves out: all of a group but its first.")
    label_conflicts: int = Field(description="Groups whose clips carry different labels.")


def duplicate_groups(registry: Registry, dataset_id: str) -> Hygiene:
    """Every set of active clips with identical audio, label conflicts first."""
    require_dataset(registry, dataset_id)
    active = (Clip.dataset_id == dataset_id, Clip.deleted_at.is_(None))
    with registry.sessions() as session:
        shared = select(Clip.sha256).where(*active).group_by(Clip.sha256).having(func.count() > 1)
        rows = session.scalars(
            select(Clip)
            .where(*active, Clip.sha256.in_(shared))
            .order_by(Clip.sha256, Clip.created_at, Clip.id)
        ).all()
        clips = [ClipRecord.model_validate(row) for row in rows]
    by_hash: dict[str, list[ClipRecord]] = {}
    for clip in clips:
        by_hash.setdefault(clip.sha256, []).append(clip)
    groups = [
        DuplicateGroup(sha256=sha, clips=members, labels=sorted({c.label for c in members}))
        for sha, members in by_hash.items()
    ]
    groups.sort(key=lambda g: (not g.conflict, g.clips[0].created_at))
    return Hygiene(
        groups=groups,
        left_out=sum(len(g.clips) - 1 for g in groups),
        label_conflicts=sum(g.conflict for g in groups),
    )


def keep_one(
    registry: Registry, dataset_id: str, sha256: str, keep_clip_id: str, actor: str
) -> list[ClipRecord]:
    """Keep `keep_clip_id` of the group with this audio; soft-delete the others. Returns the
    clips deleted now."""
    group = next(
        (g for g in duplicate_groups(registry, dataset_id).groups if g.sha256 == sha256), None
    )
    if group is None:
        raise NotFound(f"No duplicate clips with sha256 {sha256!r} in dataset {dataset_id!r}.")
    if keep_clip_id not in {c.id for c in group.clips}:
        raise InvalidInput(
            f"Clip {keep_clip_id!r} is not in that group; keep one of: "
            f"{', '.join(c.id for c in group.clips)}."
        )
    return [delete_clip(registry, c.id, actor) for c in group.clips if c.id != keep_clip_id]
