"""`waketrain eval`: a job's model on recordings it never saw, as the board would hear them."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from waketrain.jobs import queue
from waketrain.runtime.loader import load_export
from waketrain.runtime.model_card import CARD_FILE
from waketrain.store.errors import Conflict, NotFound
from waketrain.store.registry import Registry
from waketrain.training.held_out import NOISY_SNR_DB, TestAudio, measure


class NegativeFolder(BaseModel):
    folder: str
    minutes: float
    false_accepts: int
    fa_per_hour: float


class OperatingPoint(BaseModel):
    threshold: float
    frr_noisy: float


class HeldOutReport(BaseModel):
    job_id: str
    model_id: str
    phrase: str
    threshold: float = Field(description="The job's own threshold, which the board uses.")
    target_fa_per_hour: float
    positives: int
    frr_clean: float = Field(description="False rejects of the positives in silence.")
    frr_noisy: float = Field(description=f"In the background at {NOISY_SNR_DB:g} dB SNR.")
    negatives: list[NegativeFolder]
    fa_per_hour: float
    best_within_target: OperatingPoint | None = Field(
        description="This audio's lowest-FRR threshold with FA/h within the job's target."
    )


def evaluate_job(
    registry: Registry,
    job_id: str | None,
    positives: list[Path],
    negatives: list[Path],
    background: list[Path] | None = None,
) -> HeldOutReport:
    """The job's model (default: the current one) at its own threshold on these folders."""
    job_id = job_id or queue.current_job_id(registry)
    if job_id is None:
        raise NotFound("There is no current model yet: name a job with --job, or train one.")
    job = queue.get_job(registry, job_id)
    if job.status != "succeeded" or job.export_dir is None:
        raise Conflict(f"Job {job_id} is {job.status}; only a succeeded job has a model.")
    return evaluate_export(registry.layout.root / job.export_dir, positives, negatives, background)


def evaluate_export(
    export_dir: Path,
    positives: list[Path],
    negatives: list[Path],
    background: list[Path] | None = None,
) -> HeldOutReport:
    """An export folder's model (wake_model.onnx + metadata.json) at its own threshold."""
    if not (export_dir / CARD_FILE).is_file():
        raise NotFound(f"{export_dir} is not a model export (no metadata.json in it).")
    model = load_export(export_dir)
    measured = measure(model, TestAudio.from_folders(positives, negatives, background))
    card = model.card
    target = card.target_fa_per_hour
    best = measured.best_frr_within(target)
    return HeldOutReport(
        job_id=card.job_id,
        model_id=card.model_id,
        phrase=card.phrase,
        threshold=model.threshold,
        target_fa_per_hour=target,
        positives=measured.positives,
        frr_clean=measured.frr_clean,
        frr_noisy=measured.frr_noisy,
        negatives=[
            NegativeFolder(
                folder=name,
                minutes=measured.minutes[name],
                false_accepts=count,
                fa_per_hour=count / (measured.minutes[name] / 60),
            )
            for name, count in measured.false_accepts.items()
        ],
        fa_per_hour=measured.fa_per_hour,
        best_within_target=OperatingPoint(threshold=best[0], frr_noisy=best[1]) if best else None,
    )
