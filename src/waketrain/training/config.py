"""The one typed training config: defaults, `key=value` overrides, written beside the job."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.runtime.log_mel import FRAME_HOP_SAMPLES, frames_span
from waketrain.settings import Settings
from waketrain.store.errors import InvalidInput, describe_validation_errors
from waketrain.synth.generate import SynthConfig

# The causal backend's geometry is its model's (training/causal_model.py, CausalNetConfig):
# one logit per 4 frames (40 ms) from the last 119 frames. Its window is the audio that holds
# 120 frames, the receptive field rounded up to whole hops (1.222 s): what wake_model.onnx
# takes, what a new stream is warmed up on, and how long after a phrase a detection counts.
CAUSAL_HOP_FRAMES = 4
CAUSAL_WINDOW_FRAMES = 120
CAUSAL_HOP_SECONDS = CAUSAL_HOP_FRAMES * FRAME_HOP_SAMPLES / SAMPLE_RATE_HZ
CAUSAL_WINDOW_SECONDS = frames_span(CAUSAL_WINDOW_FRAMES) / SAMPLE_RATE_HZ


class AugmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    noise_probability: float = Field(default=0.8, ge=0, le=1)
    snr_db_min: float = Field(default=0.0, ge=-10, le=60)
    snr_db_max: float = Field(default=20.0, ge=-10, le=60)
    rir_probability: float = Field(default=0.3, ge=0, le=1)
    gain_db_min: float = Field(default=-12.0, ge=-60, le=20)
    gain_db_max: float = Field(default=6.0, ge=-60, le=20)
    level_probability: float = Field(
        default=0.5, ge=0, le=1, description="Windows set to an absolute level, not a gain."
    )
    level_dbfs_min: float = Field(default=-50.0, ge=-80, le=0, description="RMS, dBFS.")
    level_dbfs_max: float = Field(default=-10.0, ge=-80, le=0, description="RMS, dBFS.")
    colour_probability: float = Field(
        default=0.5, ge=0, le=1, description="Windows through a random microphone response."
    )
    colour_db: float = Field(default=6.0, ge=0, le=24, description="EQ gain range, +/- dB.")
    low_cut_hz_min: float = Field(default=40.0, ge=10, le=2000)
    low_cut_hz_max: float = Field(default=400.0, ge=10, le=2000)
    high_cut_hz_min: float = Field(default=3000.0, ge=1000, le=16000)
    high_cut_hz_max: float = Field(default=9000.0, ge=1000, le=16000)
    overdrive_probability: float = Field(
        default=0.1, ge=0, le=1, description="Windows clipped or saturated past full scale."
    )
    overdrive_db_max: float = Field(default=18.0, ge=0, le=40)
    voice_shift_probability: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Clips spoken by a higher or lower voice: pitch and formants together, "
        "same speed (the oww_head backend).",
    )
    voice_shift_semitones: float = Field(default=3.0, ge=0, le=12, description="Up to +/-.")
    speed_probability: float = Field(default=0.5, ge=0, le=1)
    speed_min: float = Field(default=0.9, ge=0.5, le=1.0)
    speed_max: float = Field(default=1.1, ge=1.0, le=2.0)
    hard_negatives_per_positive: float = Field(
        default=1.0, ge=0, le=10, description="Reversed and partial phrases, labelled negative."
    )
    across_clips_probability: float = Field(
        default=0.5, ge=0, le=1, description="Negative windows spanning two clips."
    )
    spec_augment_probability: float = Field(default=0.5, ge=0, le=1)
    time_masks: int = Field(default=2, ge=0, le=10)
    time_mask_frames: int = Field(default=10, ge=1, le=50)
    freq_masks: int = Field(default=2, ge=0, le=10)
    freq_mask_bands: int = Field(default=8, ge=1, le=32)

    @model_validator(mode="after")
    def _ranges_ordered(self) -> AugmentConfig:
        for low, high in (
            ("snr_db_min", "snr_db_max"),
            ("gain_db_min", "gain_db_max"),
            ("level_dbfs_min", "level_dbfs_max"),
            ("low_cut_hz_min", "low_cut_hz_max"),
            ("high_cut_hz_min", "high_cut_hz_max"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} must not exceed {high}")
        return self


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: int = Field(default=64, ge=8, le=512, description="Channels of the residual blocks.")
    sub_blocks: int = Field(default=2, ge=1, le=5, description="R: separable convs per block.")
    dropout: float = Field(default=0.1, ge=0, le=0.9)
    mel_bands: int = Field(default=64, ge=16, le=128)


class HeadConfig(BaseModel):
    """The oww_head backend: a small head over openWakeWord's frozen speech embeddings."""

    model_config = ConfigDict(extra="forbid")

    hidden: int = Field(default=128, ge=8, le=1024, description="Width of the two hidden layers.")
    dropout: float = Field(default=0.2, ge=0, le=0.9)
    positive_variants: int = Field(
        default=4, ge=1, le=50, description="Augmented copies of each real training positive."
    )
    negative_variants: int = Field(
        default=2, ge=1, le=20, description="Augmented copies of each negative and noise clip."
    )
    hard_negative_weight: float = Field(
        default=2.0, ge=0, le=20, description="Loss weight of confusable and partial phrases."
    )
    members: int = Field(
        default=1,
        ge=1,
        le=8,
        description="Heads trained side by side and averaged in the one exported model. Over "
        "eight seeds three fired as often as one at three times the training time "
        "(bench/accuracy.py --voices), so one is the default.",
    )


class CausalConfig(BaseModel):
    """The causal backend: a streaming CNN over raw log-mel frames, state carried on the board."""

    model_config = ConfigDict(extra="forbid")

    steps_per_call: int = Field(
        default=4,
        ge=1,
        le=16,
        description="Hops (40 ms each) one call of the board's causal_step.onnx computes: "
        "more cost less per second and delay a score longer (4: 160 ms).",
    )
    positive_hops: int = Field(
        default=4,
        ge=1,
        le=15,
        description="A positive training window's loss is on the highest of its last this "
        "many hops (all of which follow the phrase): the model fires at one of them.",
    )
    negative_hops: int = Field(
        default=16,
        ge=1,
        le=40,
        description="Hops after the receptive field is full in each training window; every "
        "one of them is a negative in a negative window, and the window is that much longer.",
    )

    bank_windows: int = Field(
        default=128,
        ge=0,
        le=10_000,
        description="Windows of the negative bank's training audio added to each epoch; "
        "bank.hard_share of them end where the model being trained scores highest.",
    )
    mining_seconds: float = Field(
        default=300.0,
        ge=0,
        le=36_000,
        description="Bank audio the model scores each epoch to find those hard windows.",
    )

    @model_validator(mode="after")
    def _positive_hops_hear_no_padding(self) -> CausalConfig:
        if self.positive_hops > self.negative_hops:
            raise ValueError(
                "causal.positive_hops must not exceed causal.negative_hops: earlier hops of a "
                "training window read zero padding"
            )
        return self


class BankConfig(BaseModel):
    """How a job draws on the negative bank (waketrain negatives add)."""

    model_config = ConfigDict(extra="forbid")

    use: bool = Field(default=True, description="Train and calibrate on the bank's audio.")
    calibration_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Share of the bank's sources (picked by content hash, the same for every "
        "job) that only calibrate the threshold and are never trained on.",
    )
    windows_per_epoch: int = Field(
        default=12_000, ge=0, le=200_000, description="Bank windows added to each epoch (oww_head)."
    )
    hard_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Share of them that the current model scores highest (hard-negative "
        "mining); the rest are drawn at random.",
    )
    mining_pool: int = Field(
        default=20_000,
        ge=100,
        le=1_000_000,
        description="Bank windows scored between epochs to find the hard ones: the budget.",
    )
    weight: float = Field(default=1.0, gt=0, le=20, description="Loss weight of bank windows.")


class TrainConfig(BaseModel):
    """Everything that decides what a job trains; saved as jobs/<id>/config.json."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["marblenet", "oww_head", "causal"] = Field(
        default="oww_head",
        description="oww_head: a head over openWakeWord speech embeddings, in the format the "
        "TARS wake service loads (the default: far fewer false accepts from few clips, "
        "measured by bench/accuracy.py --compare); marblenet: a small CNN on raw audio; "
        "causal: a streaming CNN on log-mel frames that carries its state from call to call "
        "(the cheapest on the board).",
    )
    window_seconds: float = Field(
        default=1.0,
        ge=0.5,
        le=2.0,
        description=f"Audio one score reads. causal: its receptive field, "
        f"{CAUSAL_WINDOW_SECONDS:g} (the default and the only value).",
    )
    hop_seconds: float = Field(
        default=0.1,
        ge=0.02,
        le=0.5,
        description=f"Time between scores. causal: {CAUSAL_HOP_SECONDS:g} (the default and "
        "the only value: the model gives one logit per 4 frames).",
    )
    smoothing_windows: int = Field(default=3, ge=1, le=20, description="Scores averaged.")
    refractory_seconds: float = Field(default=2.0, ge=0, le=10)
    epochs: int = Field(default=30, ge=1, le=1000)
    batch_size: int = Field(default=64, ge=2, le=4096)
    lr: float = Field(default=3e-3, gt=0, le=1)
    weight_decay: float = Field(default=1e-3, ge=0, le=1)
    seed: int = Field(default=1234, ge=0)
    val_fraction: float = Field(default=0.2, gt=0, lt=0.9)
    negatives_per_positive: float = Field(
        default=4.0, gt=0, le=20, description="Background-only windows mixed in per positive."
    )
    positive_weight: float | None = Field(
        default=1.0,
        gt=0,
        le=20,
        description="Loss weight of positive windows; null = balanced against the negatives. "
        "1 lets the more numerous negatives weigh more, which costs recall and buys fewer "
        "false accepts (measured by bench/accuracy.py).",
    )
    target_fa_per_hour: float = Field(default=1.0, gt=0, le=100)
    frr_tolerance: float = Field(
        default=0.0,
        ge=0,
        le=0.5,
        description="False rejects the threshold may add above the lowest reachable, for "
        "margin against false accepts that short negative audio did not contain; with hours "
        "in the negative bank the calibration stream holds the false accepts instead.",
    )
    threshold_choice: Literal["midway", "highest"] = Field(
        default="midway",
        description="Which of the thresholds that meet the target (and the FRR tolerance): "
        "midway, in log-odds, between the lowest and the highest of them, as far from the "
        "negative audio's highest scores as from the weakest positive's peak, so neither an "
        "unheard voice nor an unheard room tips it (measured by bench/accuracy.py --bank); "
        "highest: the most margin against false accepts, at the edge of the positives.",
    )
    capture_negative_weight: float = Field(
        default=3.0,
        gt=0,
        le=20,
        description="Loss weight of false wakes captured on the board and reviewed as "
        "negatives: the hardest negatives there are, heard in the board's own room.",
    )
    min_positive_clips: int = Field(default=50, ge=1)
    min_negative_clips: int = Field(default=50, ge=1)

    @classmethod
    def service_defaults(cls, settings: Settings) -> TrainConfig:
        """Defaults with the service's training gate, the one dataset summaries report."""
        return cls(
            min_positive_clips=settings.min_positive_clips,
            min_negative_clips=settings.min_negative_clips,
        )

    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = Field(default=True, description="Mixed precision (CUDA only).")
    augment: AugmentConfig = AugmentConfig()
    model: ModelConfig = ModelConfig()
    head: HeadConfig = HeadConfig()
    causal: CausalConfig = CausalConfig()
    synth: SynthConfig = SynthConfig()
    bank: BankConfig = BankConfig()

    @model_validator(mode="before")
    @classmethod
    def _backend_geometry(cls, data: object) -> object:
        """The causal backend's hop and window default to its model's, not the others'."""
        if isinstance(data, dict) and data.get("backend") == "causal":
            return {"hop_seconds": CAUSAL_HOP_SECONDS, "window_seconds": CAUSAL_WINDOW_SECONDS,
                    **data}  # fmt: skip
        return data

    @model_validator(mode="after")
    def _hop_fits_window(self) -> TrainConfig:
        if self.hop_seconds > self.window_seconds:
            raise ValueError("hop_seconds must not exceed window_seconds")
        if self.backend == "causal":
            for key, wanted in (
                ("hop_seconds", CAUSAL_HOP_SECONDS),
                ("window_seconds", CAUSAL_WINDOW_SECONDS),
            ):
                if abs(getattr(self, key) - wanted) > 1e-6:
                    raise ValueError(
                        f"the causal backend's {key} is its model's, {wanted:g}; leave "
                        f"{key} out (or set it to {wanted:g})"
                    )
        return self


def _parse_value(raw: str) -> object:
    """`--set` values: JSON where it parses (numbers, true/false), else the string."""
    import json

    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def apply_overrides(base: TrainConfig, overrides: dict[str, object]) -> TrainConfig:
    """A new config with dotted-key overrides (`augment.noise_probability=0.5`), validated."""
    # Only what was set, so that defaults which depend on the backend (the causal hop and
    # window) follow an overridden backend; the full dump says which keys exist.
    full, data = base.model_dump(), base.model_dump(exclude_unset=True)
    for key, value in overrides.items():
        known_here, target = full, data
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(known_here.get(part), dict):
                raise InvalidInput(f"Unknown config key {key!r}.")
            known_here, target = known_here[part], target.setdefault(part, {})
        if leaf not in known_here:
            known = ", ".join(sorted(k for k in full if not isinstance(full[k], dict)))
            raise InvalidInput(
                f"Unknown config key {key!r}. Known keys: {known}, "
                "augment.*, model.*, head.*, causal.*, synth.*, bank.*."
            )
        target[leaf] = value
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        problems = describe_validation_errors(exc.errors(), "config")
        raise InvalidInput(f"Invalid training config: {problems}.") from None


def parse_set_options(items: list[str]) -> dict[str, object]:
    """`["epochs=5", "augment.rir_probability=0"]` → {"epochs": 5, ...}."""
    overrides: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"Expected key=value, got {item!r} (e.g. --set epochs=10).")
        overrides[key.strip()] = _parse_value(raw.strip())
    return overrides
