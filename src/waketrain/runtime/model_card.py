"""The model card: an export's metadata.json, typed and versioned.

Export writes it once; the detector, the Wyoming server, deploy, the worker,
the try-out and the evaluation read it through `read_card`, and nowhere else is the file
parsed. A card from a newer waketrain with fields this one does not know still loads (the
fields are kept and written back); a card of another schema version is refused with a clear
error. `docs/reference/model-card.md` publishes its JSON Schema for other detectors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SCHEMA_VERSION = 1
CARD_FILE = "metadata.json"

Backend = Literal["marblenet", "oww_head", "causal"]


class ModelCardError(ValueError):
    """A metadata.json that is missing, unreadable, or of a schema this waketrain cannot read."""


class _Open(BaseModel):
    """Fields a later version adds are kept, not refused."""

    model_config = ConfigDict(extra="allow")


class CurvePoint(_Open):
    threshold: float
    frr: float
    fa_per_hour: float


class Metrics(_Open):
    """The job's own figures at its threshold, on its held-out split and calibration hours."""

    frr: float
    fa_per_hour: float
    threshold_log_odds: float | None = None
    auc: float | None = None
    accuracy: float | None = None
    confusion: dict[str, int] = Field(default_factory=dict)
    positives_evaluated: int = 0
    negative_clips_evaluated: int = 0
    negative_hours: float = 0.0
    false_accepts: int = 0
    fa_per_hour_upper: float | None = None
    hours_to_decide: float = 0.0
    calibration_hours: float = 0.0
    onnx_parity_max_abs_diff: float | None = None
    best_epoch: int | None = None
    windows_per_second: float | None = None
    det_curve: list[CurvePoint] = Field(default_factory=list)
    missed_positives: list[dict[str, Any]] = Field(default_factory=list)
    captured_false_wakes: dict[str, int] = Field(default_factory=dict)


class DataSummary(_Open):
    """What the job trained and validated on."""

    train: dict[str, int] = Field(default_factory=dict)
    val: dict[str, int] = Field(default_factory=dict)
    skipped: list[dict[str, str]] = Field(default_factory=list)
    vad_doubted: list[dict[str, str]] = Field(default_factory=list)
    negative_bank: dict[str, Any] = Field(default_factory=dict)
    captures: dict[str, Any] = Field(default_factory=dict)
    synthetic: dict[str, Any] | None = None


class Standing(_Open):
    threshold: float
    frr: float
    false_accepts: int


class StreamCost(_Open):
    """What streaming the model cost on the machine that trained it, as the board streams it:
    80 ms chunks through one onnxruntime thread. A board's CPU differs; the ratio between
    models holds better than the figure."""

    cpu_percent: float = Field(description="Percent of one core per second of audio.")
    audio_seconds: float
    machine: str

    def describe(self) -> str:
        return (
            f"{self.cpu_percent:.2f} % of one CPU core per second of audio, measured on "
            f"{self.machine}"
        )


class Comparison(_Open):
    """The new model against the one that was current, on the same positives and hours."""

    current_job_id: str
    positives: int
    hours: float
    current: Standing
    new: Standing
    at_least_as_good: bool


class ModelCard(_Open):
    """Everything needed to run an exported model and to judge it."""

    schema_version: int = SCHEMA_VERSION
    model_id: str
    job_id: str = ""
    backend: Backend = "marblenet"
    phrase: str
    dataset_id: str = ""
    # how the board streams it: window, hop, smoothing and refractory period
    sample_rate: int
    window_seconds: float
    hop_seconds: float
    threshold: float
    smoothing_windows: int
    refractory_seconds: float
    # how the threshold was chosen
    target_fa_per_hour: float = 1.0
    frr_tolerance: float = 0.0
    threshold_choice: str = "midway"
    target_met: bool = False
    threshold_note: str = ""
    # the ONNX graph's input and output (names, dtypes, shapes) and, per backend, its features
    input: dict[str, Any] = Field(default_factory=dict)
    output: dict[str, Any] = Field(default_factory=dict)
    encoder: dict[str, Any] | None = None  # marblenet: the streaming encoder's graph
    features: str | None = None  # oww_head: the embeddings it reads
    stream: dict[str, Any] | None = None  # causal: the step graph the board streams, its state
    metrics: Metrics
    data: DataSummary = Field(default_factory=DataSummary)
    dataset_sha256: str = ""
    config: dict[str, Any] = Field(default_factory=dict)  # the TrainConfig the job ran
    tensorrt: str = ""
    timings_seconds: dict[str, float] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    created: str = ""
    training_device: dict[str, Any] | None = None
    comparison: Comparison | None = None
    stream_cost: StreamCost | None = None

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"model card schema {version}; this waketrain reads schema {SCHEMA_VERSION} "
                "(install the waketrain that trained the model, or retrain it)"
            )
        return version

    @property
    def mel_bands(self) -> int:
        """The log-mel bands of a marblenet model's encoder."""
        return int(self.config["model"]["mel_bands"])

    def board_env(self) -> dict[str, str]:
        """The bundle's bundle.env: what the board's script and wake service read."""
        return {
            "MODEL_ID": self.model_id,
            "BACKEND": self.backend,
            "JOB_ID": self.job_id,
            "THRESHOLD": repr(self.threshold),
            "REFRACTORY_SECONDS": repr(self.refractory_seconds),
        }


def read_card(export_dir: Path) -> ModelCard:
    """The card of an export folder, or ModelCardError saying what is wrong with it."""
    path = export_dir / CARD_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelCardError(
            f"{export_dir} is not a model export (no {CARD_FILE} in it)."
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelCardError(f"{path} cannot be read: {exc}") from exc
    try:
        return ModelCard.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'card'}: {e['msg']}" for e in exc.errors()
        )
        raise ModelCardError(f"{path} is not a model card waketrain can read: {problems}") from exc


def card_schema() -> dict[str, Any]:
    """The card's JSON Schema, for TARS and third-party detectors to validate against."""
    return ModelCard.model_json_schema()
