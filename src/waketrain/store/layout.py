"""Where everything lives in the registry (see DESIGN, Storage)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from waketrain.store.errors import InvalidInput

DATASET_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def validate_dataset_id(dataset_id: str) -> str:
    """Dataset ids are slugs, so they are safe as folder names (no traversal)."""
    if not DATASET_ID_PATTERN.fullmatch(dataset_id):
        raise InvalidInput(
            f"Invalid dataset id {dataset_id!r}: use 1-63 lowercase letters, digits and dashes, "
            "starting with a letter or digit (e.g. 'tars-default')."
        )
    return dataset_id


@dataclass(frozen=True)
class Layout:
    root: Path
    scratch_dir: Path | None = None  # elsewhere than root/scratch (a worker's local disk)

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def scratch(self) -> Path:
        return self.scratch_dir or self.root / "scratch"

    @property
    def transfers(self) -> Path:
        return self.root / "transfers"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def negatives(self) -> Path:
        return self.root / "negatives"

    @property
    def locks(self) -> Path:
        return self.root / ".locks"

    def dataset_dir(self, dataset_id: str) -> Path:
        return self.datasets / validate_dataset_id(dataset_id)

    def clips_dir(self, dataset_id: str) -> Path:
        return self.dataset_dir(dataset_id) / "clips"

    def clip_path(self, dataset_id: str, clip_id: str) -> Path:
        return self.clips_dir(dataset_id) / f"{clip_id}.wav"

    def captures_dir(self, dataset_id: str) -> Path:
        return self.dataset_dir(dataset_id) / "captures"

    def capture_path(self, dataset_id: str, capture_id: str) -> Path:
        return self.captures_dir(dataset_id) / f"{capture_id}.wav"

    def labels_path(self, dataset_id: str) -> Path:
        return self.dataset_dir(dataset_id) / "labels.json"

    def metrics_path(self, dataset_id: str) -> Path:
        return self.dataset_dir(dataset_id) / "metrics.json"

    def projection_lock(self, dataset_id: str) -> Path:
        return self.locks / f"dataset-{validate_dataset_id(dataset_id)}.lock"

    def create(self) -> None:
        for folder in (
            self.datasets,
            self.jobs,
            self.negatives,
            self.scratch,
            self.transfers,
            self.models,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        self.locks.mkdir(parents=True, exist_ok=True)
