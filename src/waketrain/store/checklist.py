"""The dataset's "what next": the first run's steps, from naming the phrase to the board.

Each step says what it is for and how far along it is, from the same training gate that
decides whether a job may start (store/gate.py), so the checklist and the Train button agree.
The same list stays on the dataset's page as its "what next" panel once the first model runs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, select

from waketrain.store.gate import dataset_gate
from waketrain.store.health import require_dataset
from waketrain.store.models import Clip, Deployment, Job
from waketrain.store.registry import Registry

VOICES = 3  # speakers the checklist asks for among the positives
NOISE_CLIPS = 10  # the room with nobody speaking: fan, kitchen, TV in the background

StepKey = Literal[
    "phrase", "positives", "voices", "negatives", "noise", "train", "evaluate", "apply"
]


class Step(BaseModel):
    key: StepKey
    title: str
    why: str = Field(description="What the step is for, in a sentence.")
    done: bool
    required: bool = Field(description="Training or deploying waits for it.")
    have: int
    want: int
    detail: str = Field(description="Where it stands, in words.")


class Checklist(BaseModel):
    dataset_id: str
    steps: list[Step]
    next: StepKey | None = Field(description="The first step not done; null when all are.")


def checklist(registry: Registry, dataset_id: str) -> Checklist:
    dataset = require_dataset(registry, dataset_id)
    settings = registry.settings
    gate = dataset_gate(registry, dataset_id)
    usable = set(gate.usable)
    with registry.sessions() as session:
        speakers = session.scalar(
            select(func.count(func.distinct(Clip.speaker))).where(
                Clip.id.in_([i for i in usable if gate.labels[i] == "positive"]),
                Clip.speaker.is_not(None),
            )
        )
        jobs = session.scalars(
            select(Job).where(Job.dataset_id == dataset_id).order_by(Job.created_at.desc())
        ).all()
        deployed = session.scalar(
            select(func.count()).where(
                Deployment.dataset_id == dataset_id, Deployment.status == "succeeded"
            )
        )
    succeeded = [j for j in jobs if j.status == "succeeded"]
    running = next((j for j in jobs if j.status in ("queued", "running")), None)
    positives, others = gate.count("positive"), gate.count("negative", "noise")
    noise = gate.count("noise")
    metrics = (succeeded[0].metrics or {}) if succeeded else {}

    def counted(
        key: StepKey, title: str, why: str, have: int, want: int, required: bool, unit: str
    ) -> Step:
        return Step(
            key=key,
            title=title,
            why=why,
            done=have >= want,
            required=required,
            have=have,
            want=want,
            detail=f"{have} of {want} {unit}",
        )

    steps = [
        Step(
            key="phrase",
            title="Name your phrase",
            done=True,
            required=True,
            have=1,
            want=1,
            why="What the model listens for, as people will say it.",
            detail=f"“{dataset.phrase}”",
        ),
        counted(
            "positives",
            "Record the phrase",
            "Say it the way you will to the robot: near and across the room, quiet and loud.",
            positives,
            settings.min_positive_clips,
            True,
            "usable clips",
        ),
        counted(
            "voices",
            "Several voices",
            "Each person in the house, tagged as a speaker: a model that heard one voice "
            "misses others.",
            speakers or 0,
            VOICES,
            False,
            "speakers",
        ),
        counted(
            "negatives",
            "Other speech and sounds",
            "Words and talk that are not the phrase, especially ones that sound like it: "
            "what the model must ignore.",
            others,
            settings.min_negative_clips,
            True,
            "negative or noise clips",
        ),
        counted(
            "noise",
            "Room noise",
            "The room with nobody speaking (fan, kitchen, TV in the background), labelled "
            "noise: the model learns the phrase over it.",
            noise,
            NOISE_CLIPS,
            False,
            "noise clips",
        ),
        Step(
            key="train",
            title="Train",
            done=bool(succeeded),
            required=True,
            have=len(succeeded),
            want=1,
            why="A model trained on these clips, in minutes.",
            detail=("running" if running else _count(len(succeeded), "trained model")),
        ),
        Step(
            key="evaluate",
            title="Read the result",
            done=bool(metrics),
            required=False,
            have=int(bool(metrics)),
            want=1,
            why="Misses and false wakes measured on clips and hours the model never trained on.",
            detail=_result(metrics),
        ),
        Step(
            key="apply",
            title="Apply to the board",
            done=bool(deployed),
            required=True,
            have=deployed or 0,
            want=1,
            why="Ship the model to the robot over SSH; a failed apply rolls back.",
            detail=_count(deployed or 0, "deployment") + " succeeded",
        ),
    ]
    return Checklist(
        dataset_id=dataset_id,
        steps=steps,
        next=next((s.key for s in steps if not s.done), None),
    )


def _result(metrics: dict[str, object]) -> str:
    """The job's misses, and its false wakes with the count and hours they rest on."""
    frr, count = metrics.get("frr"), metrics.get("false_accepts")
    hours, upper = metrics.get("negative_hours"), metrics.get("fa_per_hour_upper")
    if not isinstance(frr, float | int) or not isinstance(count, int):
        return "no trained model yet"
    if not isinstance(hours, float | int) or hours <= 0:
        return f"misses {frr:.1%} of held-out phrases"
    bound = f", 95 % bound < {upper:.1f}/h" if isinstance(upper, float | int) else ""
    return (
        f"misses {frr:.1%} of held-out phrases; {count} false wakes in {hours:.2f} h of "
        f"other audio ({count / hours:.2f}/h{bound})"
    )


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"
