"""train(): one job from registry clips to an exported, evaluated model. Read top to bottom:
config, data, model, loop, evaluation, export."""

from __future__ import annotations

import dataclasses
import platform
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from waketrain import __version__
from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.runtime.loader import open_export
from waketrain.runtime.model_card import (
    CARD_FILE,
    CurvePoint,
    DataSummary,
    Metrics,
    ModelCard,
    StreamCost,
)
from waketrain.runtime.model_card import Comparison as CardComparison
from waketrain.runtime.speech_embedding import SpeechEmbedder
from waketrain.runtime.stream_cost import cpu_percent, describe_cpu
from waketrain.store.artifacts import record_artifact
from waketrain.store.errors import InvalidInput
from waketrain.store.files import atomic_write_json
from waketrain.store.models import utcnow
from waketrain.store.registry import Registry
from waketrain.synth.generate import SyntheticSet, synthesize
from waketrain.training.bank_use import BankPlan, HardNegativeMiner, calibration_scores
from waketrain.training.causal_backend import bank_negatives, causal_fitting
from waketrain.training.causal_mining import BankAudioNegatives
from waketrain.training.comparison import Scorer, compare_with_current
from waketrain.training.config import TrainConfig
from waketrain.training.data import Example, PreparedData, prepare_data, read_folder_audio
from waketrain.training.diagnosis import clip_levels, missed_positives
from waketrain.training.evaluate import (
    JOB_FRAME_SNRS_DB,
    EvaluationResult,
    clips_that_fire,
    evaluate_streaming,
    frame_positives,
    log_odds,
)
from waketrain.training.export import (
    build_tensorrt_engine,
    plot_confusion_matrix,
    plot_det_curve,
)
from waketrain.training.fitting import (
    Exported,
    Fitting,
    JobCancelled,
    load_warm_start,
    recall_at_low_false_alarm,
)
from waketrain.training.head_data import EmbeddingCache, HeadExampleBuilder
from waketrain.training.marblenet_backend import marblenet_fitting
from waketrain.training.negative_bank import NegativeBank
from waketrain.training.oww_head_backend import build_head_data, head_fitting

__all__ = ["JobCancelled", "ProgressUpdate", "TrainResult", "resolve_device", "train"]

STAGES = ("data_prep", "training", "eval", "export")
# Share of the whole job each stage takes, for one progress bar.
STAGE_WEIGHTS = {"data_prep": 0.1, "training": 0.75, "eval": 0.1, "export": 0.05}
SPEECH_BANK_KINDS = ("speech", "tv", "mixed")  # bank sets that are mostly people talking
COST_SECONDS = 20.0  # audio streamed to measure what the export costs on this machine


@dataclass
class ProgressUpdate:
    stage: str
    stage_progress: float  # 0-1 within the stage
    progress: float  # 0-1 over the whole job
    message: str
    metrics: dict[str, Any] = field(default_factory=dict)


Progress = Callable[[ProgressUpdate], None]


@dataclass
class TrainResult:
    job_id: str
    job_dir: Path
    export_dir: Path
    card: ModelCard
    timings: dict[str, float]


class JobLog:
    """Progress goes to logs.txt in the job folder and to the caller's callback."""

    def __init__(self, path: Path, progress: Progress | None) -> None:
        self._path = path
        self._progress = progress

    def line(self, message: str) -> None:
        with self._path.open("a") as log:
            log.write(f"{utcnow().isoformat()} {message}\n")

    def report(self, stage: str, fraction: float, message: str, **metrics: Any) -> None:
        done = sum(STAGE_WEIGHTS[s] for s in STAGES[: STAGES.index(stage)])
        overall = done + STAGE_WEIGHTS[stage] * fraction
        self.line(f"[{stage} {fraction:4.0%}] {message}")
        if self._progress:
            self._progress(ProgressUpdate(stage, fraction, overall, message, metrics))


def resolve_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise InvalidInput("device=cuda was asked for, but no CUDA GPU is visible to PyTorch.")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def describe_device(device: torch.device, amp: bool) -> dict[str, Any]:
    """Which device trained the model, for metadata.json: a CUDA job is judged differently."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else describe_cpu()
    return {"type": device.type, "name": name, "amp": amp, "torch": torch.__version__}


def measure_stream_cost(export_dir: Path, card: ModelCard, audio: np.ndarray) -> StreamCost:
    """The exported model streamed as the board streams it, over COST_SECONDS of `audio`."""
    audio = np.resize(audio, int(COST_SECONDS * SAMPLE_RATE_HZ))
    stream = open_export(export_dir, card, threads=1).stream()
    # one onnxruntime thread works on the caller's: the job's other threads do not count
    percent = cpu_percent(stream.process, audio, time.thread_time)
    return StreamCost(cpu_percent=round(percent, 3), audio_seconds=COST_SECONDS,
                      machine=describe_cpu())  # fmt: skip


def seed_everything(seed: int, device: torch.device) -> torch.Generator:
    """Seed every source of randomness; augmentation draws from the returned generator."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator(device=device).manual_seed(seed)


def _versions() -> dict[str, str]:
    import onnxruntime

    return {
        "waketrain": __version__,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _minutes(clips: Sequence[np.ndarray]) -> str:
    return f"{sum(len(c) for c in clips) / SAMPLE_RATE_HZ / 60:.1f} min"


def train(
    registry: Registry,
    dataset_id: str,
    config: TrainConfig,
    progress: Progress | None = None,
    *,
    job_id: str | None = None,
    init_from: str | None = None,
    noise_dirs: Sequence[Path] = (),
    rir_dirs: Sequence[Path] = (),
    eval_negative_dirs: Sequence[Path] = (),
    should_cancel: Callable[[], bool] = lambda: False,
) -> TrainResult:
    """Train, evaluate and export one model; everything lands in jobs/<job_id>/."""
    # --- config ---------------------------------------------------------------------------
    job_id = job_id or str(uuid.uuid4())
    job_dir = registry.layout.jobs / job_id
    export_dir, checkpoints = job_dir / "export", job_dir / "checkpoints"
    export_dir.mkdir(parents=True, exist_ok=True)
    checkpoints.mkdir(exist_ok=True)
    atomic_write_json(job_dir / "config.json", config.model_dump(mode="json"))
    log = JobLog(job_dir / "logs.txt", progress)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    # --- data -----------------------------------------------------------------------------
    log.report("data_prep", 0.0, f"preparing dataset {dataset_id} ({config.backend})")
    data = prepare_data(registry, dataset_id, config, noise_dirs, rir_dirs)
    eval_negatives = [e.samples for e in data.val if e.label != "positive"]
    for folder in eval_negative_dirs:
        eval_negatives += read_folder_audio(folder)
    for skipped in data.skipped:
        log.line(f"skipped clip {skipped.clip_id}: {skipped.reason}")
    for doubted in data.doubted:
        log.line(f"positive clip {doubted.clip_id}: {doubted.reason}")
    log.line(
        f"background noise: {_minutes(data.background)} (dataset + {len(noise_dirs)} folders); "
        f"room impulse responses: {len(data.rirs) or 'synthetic'}; held-out negatives: "
        f"{_minutes(eval_negatives)} (dataset + {len(eval_negative_dirs)} folders)"
    )
    bank = NegativeBank(registry.layout)
    plan = BankPlan.of(bank, config.bank)
    log.line(plan.summary())
    synthetic = None
    wanted, why = synthetic_speech_wanted(config, plan)
    log.line(f"synthetic speech: {why}")
    if wanted:
        synthetic = synthesize(data.phrase, config.synth, registry.layout.scratch, config.seed)
        log.line(synthetic.report.summary())
    split = {
        f"{split}_{label}": data.count(split, label)
        for split in ("train", "val")
        for label in ("positive", "negative", "noise")
    }
    log.report("data_prep", 0.3, f"split {split}; skipped {len(data.skipped)}", **split)

    # --- model ----------------------------------------------------------------------------
    device = resolve_device(config.device)
    gen = seed_everything(config.seed, device)

    def check_cancel(epoch: int) -> None:
        if should_cancel():
            raise JobCancelled(f"Job {job_id} was cancelled during epoch {epoch + 1}.")

    def warm_start(model: nn.Module) -> None:
        if init_from:
            load_warm_start(registry.layout.jobs, init_from, model, config.backend)

    miner: HardNegativeMiner | BankAudioNegatives | None = None
    if config.backend == "oww_head":
        head_miner = (
            HardNegativeMiner(plan.training, config.bank, config.seed) if plan.training else None
        )
        miner = head_miner
        fitting = _oww_head_fitting(
            registry, data, synthetic, config, device, gen, log, check_cancel, warm_start,
            head_miner,
        )  # fmt: skip
    else:
        if synthetic is not None:
            data = _with_synthetic(data, synthetic, config)
        if config.backend == "causal":
            miner = bank_negatives(bank, plan.training, config)
            fitting = causal_fitting(data, config, device, gen, check_cancel, warm_start, miner)
        else:
            fitting = marblenet_fitting(data, config, device, gen, check_cancel, warm_start)
    log.report("data_prep", 1.0, "training data ready")
    timings["data_prep"] = time.perf_counter() - started
    log.line(fitting.summary)

    # --- loop -----------------------------------------------------------------------------
    phase_start = time.perf_counter()
    best_epoch = _train_epochs(fitting, config, job_id, checkpoints / "best.pt", log)
    timings["training"] = time.perf_counter() - phase_start
    checkpoint = torch.load(checkpoints / "best.pt", map_location="cpu", weights_only=False)
    fitting.model.load_state_dict(checkpoint["model"])

    # --- evaluation: the exported model, streamed as on the board ---------------------------
    phase_start = time.perf_counter()
    log.report(
        "eval", 0.0, f"exporting ONNX (best epoch {best_epoch + 1}) and streaming held-out audio"
    )
    onnx_path = export_dir / "wake_model.onnx"
    exported = fitting.export(onnx_path)
    val_positive_examples = [e for e in data.val if e.label == "positive"]
    val_positives = [e.samples for e in val_positive_examples]
    val_background = [e.samples for e in data.val if e.label == "noise"] or eval_negatives
    calibration, calibration_hours = calibration_scores(
        bank, plan.calibration, exported.score_windows, exported.score_audio, exported.params
    )
    positive_stream = frame_positives(val_positives, val_background, config.seed, JOB_FRAME_SNRS_DB)
    evaluation = evaluate_streaming(
        exported.score_audio,
        exported.params,
        positive_stream,
        eval_negatives,
        config.target_fa_per_hour,
        config.frr_tolerance,
        calibration,
        calibration_hours,
        config.threshold_choice,
    )
    log.report(
        "eval",
        1.0,
        f"threshold {evaluation.threshold:.6g} (log-odds {log_odds(evaluation.threshold):.2f}): "
        f"FRR {evaluation.frr:.1%}, "
        f"AUC {evaluation.auc:.3f}. {evaluation.note}",
        frr=evaluation.frr,
        fa_per_hour=evaluation.fa_per_hour,
    )
    missed = missed_positives(
        val_positive_examples,
        JOB_FRAME_SNRS_DB,
        evaluation.positive_peaks,
        evaluation.positive_heard,
        evaluation.threshold,
        clip_levels(registry, [e.clip_id for e in val_positive_examples]),
    )
    for miss in missed:
        log.line(f"missed held-out positive: {miss.describe()}")
    comparison = compare_with_current(
        registry.layout.models / "current",
        Scorer(exported.score_audio, exported.score_windows, exported.params, evaluation.threshold),
        positive_stream,
        eval_negatives,
        bank,
        plan.calibration,
    )
    if comparison is not None:
        c, n = comparison.current, comparison.new
        verdict = "at least as good" if comparison.at_least_as_good else "not better"
        log.line(
            f"against the current model (job {comparison.current_job_id}) on the same "
            f"{comparison.positives} positives and {comparison.hours:.2f} h of negatives: "
            f"FRR {n.frr:.1%} vs {c.frr:.1%}, false accepts {n.false_accepts} vs "
            f"{c.false_accepts}: {verdict}"
        )
    # The loop's own figure: false wakes captured on the board that this job did not train on.
    held_out_false_wakes = [e.samples for e in data.captures("val") if e.label == "negative"]
    captured_fired = clips_that_fire(
        exported.score_audio, held_out_false_wakes, evaluation.threshold
    )
    if held_out_false_wakes:
        log.line(
            f"held-out captured false wakes: {captured_fired} of {len(held_out_false_wakes)} "
            "still fire"
        )
    timings["eval"] = time.perf_counter() - phase_start

    # --- export ---------------------------------------------------------------------------
    phase_start = time.perf_counter()
    torch.save(checkpoint, export_dir / "checkpoint.pt")
    if config.backend == "marblenet":
        tensorrt = build_tensorrt_engine(onnx_path, export_dir / "wake_model.trt")
    elif config.backend == "causal":
        tensorrt = "not built: a causal model streams its step graph under onnxruntime"
    else:
        tensorrt = "not built: an oww_head model runs under openWakeWord's onnxruntime"
    plot_det_curve(evaluation, export_dir / "det_curve.png")
    plot_confusion_matrix(evaluation, export_dir / "confusion_matrix.png")
    timings["export"] = time.perf_counter() - phase_start
    timings["total"] = time.perf_counter() - started
    card = build_card(
        job_id, dataset_id, data, config, exported, evaluation, tensorrt, best_epoch, timings
    )
    card.training_device = describe_device(device, fitting.amp)
    card.stream_cost = measure_stream_cost(export_dir, card, positive_stream.audio)
    card.comparison = CardComparison.model_validate(comparison.as_dict()) if comparison else None
    card.data.negative_bank = {
        "calibration_hours": round(plan.calibration_hours, 4),
        "training_hours": round(plan.training_hours, 4) if config.backend != "marblenet" else 0,
        "sets": sorted({f.set_id for f in plan.calibration + plan.training}),
        "hard_windows_mined": miner.mined if miner else 0,
    }
    card.metrics.windows_per_second = round(
        fitting.windows_per_epoch * config.epochs / max(timings["training"], 1e-9), 1
    )
    card.data.captures = {
        split: {label: sum(e.label == label for e in data.captures(split))
                for label in ("positive", "negative")}
        for split in ("train", "val")
    } | {"from_models": sorted(set(data.captured_by.values()))}  # fmt: skip
    card.metrics.missed_positives = [m.as_dict() for m in missed]
    card.metrics.captured_false_wakes = {
        "held_out": len(held_out_false_wakes),
        "fired": captured_fired,
    }
    if synthetic is not None:
        card.data.synthetic = {
            "use": config.synth.use,
            "voices": config.synth.voices,
            "generated": synthetic.report.generated,
            "dropped": len(synthetic.report.dropped),
            "weight": config.synth.weight,
        }
    card_json = card.model_dump(mode="json")
    atomic_write_json(export_dir / CARD_FILE, card_json)
    record_artifact(
        registry,
        job_id,
        {
            "dataset_id": dataset_id,
            "dataset_sha256": data.dataset_sha256,
            "model_id": card.model_id,
            "backend": config.backend,
            "export_dir": str(export_dir.relative_to(registry.layout.root)),
            "config": card_json["config"],
            "metrics": card_json["metrics"],
            "created": card.created,
        },
    )
    log.report("export", 1.0, f"exported {export_dir}")
    return TrainResult(job_id, job_dir, export_dir, card, timings)


def synthetic_speech_wanted(config: TrainConfig, plan: BankPlan) -> tuple[bool, str]:
    """Whether this job adds synthetic speech, and why.

    Without a bank, espeak-ng's confusables and sentences are what teach the head that other
    speech is not the phrase. With real speech from the bank to mine (oww_head, causal), they
    make the head separate worse: on bench/accuracy.py --voices, 0.28 h of bank speech, the
    head missed 2.0 % at no held-out false accept without them and 6.5 % with them.
    """
    use = config.synth.use
    if use != "auto":
        return use != "off", f"synth.use={use}"
    hours = 0.0
    if config.backend != "marblenet":  # the backends that train on the bank
        spoken = [f for f in plan.training if f.kind in SPEECH_BANK_KINDS]
        hours = sum(f.source.seconds for f in spoken) / 3600
    if hours >= config.synth.bank_speech_hours:
        return False, (
            f"none: the negative bank gives {hours:.2f} h of real speech to train on "
            f"(synth.bank_speech_hours={config.synth.bank_speech_hours:g}; synth.use=on adds it)"
        )
    return True, (
        f"added: the negative bank gives {hours:.2f} h of real speech to train on, under "
        f"synth.bank_speech_hours={config.synth.bank_speech_hours:g}"
    )


def _with_synthetic(
    data: PreparedData, synthetic: SyntheticSet, config: TrainConfig
) -> PreparedData:
    """MarbleNet trains on synthetic clips as more examples of their label, weighted apart."""
    use, weight = config.synth.use, config.synth.weight
    keep = [e for e in data.train if not (use == "only" and e.label == "positive")]
    extra = [
        Example(f"synthetic-{i}", clip.label, "synthetic", clip.samples, weight)
        for i, clip in enumerate(synthetic.clips)
    ]
    return dataclasses.replace(data, train=keep + extra)


def _oww_head_fitting(
    registry: Registry,
    data: PreparedData,
    synthetic: SyntheticSet | None,
    config: TrainConfig,
    device: torch.device,
    gen: torch.Generator,
    log: JobLog,
    check_cancel: Callable[[int], None],
    warm_start: Callable[[nn.Module], None],
    miner: HardNegativeMiner | None,
) -> Fitting:
    embedder = SpeechEmbedder()
    cache = EmbeddingCache(registry.layout.scratch / "embeddings", embedder)
    builder = HeadExampleBuilder(cache, data.background, data.rirs, config.augment, config.seed)
    head_data = build_head_data(
        data,
        synthetic,
        config,
        builder,
        lambda f: log.report("data_prep", 0.3 + 0.7 * f, "embedding augmented clips"),
    )
    log.line(f"speech embeddings: {cache.hits} from cache, {cache.misses} computed")
    return head_fitting(head_data, config, device, gen, check_cancel, warm_start, embedder, miner)


def _train_epochs(
    fitting: Fitting, config: TrainConfig, job_id: str, checkpoint_path: Path, log: JobLog
) -> int:
    """Run the backend's epochs; keep the one with the best recall at few false alarms."""
    phase_start = time.perf_counter()
    best: tuple[float, float] | None = None  # (recall, -val_loss)
    best_epoch = 0
    for epoch, train_loss in enumerate(fitting.epochs):
        val_scores = fitting.score_val()
        val_loss = float(
            nn.functional.binary_cross_entropy(
                torch.from_numpy(val_scores).clamp(1e-6, 1 - 1e-6),
                torch.from_numpy(fitting.val_labels),
            )
        )
        recall = recall_at_low_false_alarm(val_scores, fitting.val_labels)
        if best is None or (recall, -val_loss) > best:
            best, best_epoch = (recall, -val_loss), epoch
            torch.save(
                {"model": fitting.model.state_dict(), "config": config.model_dump(mode="json"),
                 "epoch": epoch, "job_id": job_id},
                checkpoint_path,
            )  # fmt: skip
        elapsed = time.perf_counter() - phase_start
        eta = elapsed / (epoch + 1) * (config.epochs - epoch - 1)
        log.report(
            "training",
            (epoch + 1) / config.epochs,
            f"epoch {epoch + 1}/{config.epochs} loss {train_loss:.4f} "
            f"val_loss {val_loss:.4f} val_recall {recall:.3f} eta {eta:.0f}s",
            epoch=epoch + 1,
            train_loss=train_loss,
            val_loss=val_loss,
            val_recall=recall,
            eta_seconds=eta,
        )
    return best_epoch


def build_card(
    job_id: str,
    dataset_id: str,
    data: PreparedData,
    config: TrainConfig,
    exported: Exported,
    evaluation: EvaluationResult,
    tensorrt: str,
    best_epoch: int,
    timings: dict[str, float],
) -> ModelCard:
    """The contract the detector, deploy and people read: everything needed to run and judge."""
    params = exported.params
    return ModelCard(
        model_id=f"{dataset_id}-{job_id[:8]}",
        job_id=job_id,
        backend=config.backend,
        phrase=data.phrase,
        dataset_id=dataset_id,
        sample_rate=SAMPLE_RATE_HZ,
        window_seconds=params.window_samples / params.sample_rate,
        hop_seconds=params.hop_seconds,
        threshold=evaluation.threshold,
        smoothing_windows=config.smoothing_windows,
        refractory_seconds=config.refractory_seconds,
        target_fa_per_hour=config.target_fa_per_hour,
        frr_tolerance=config.frr_tolerance,
        threshold_choice=config.threshold_choice,
        target_met=evaluation.target_met,
        threshold_note=evaluation.note,
        **exported.io,
        metrics=Metrics(
            frr=evaluation.frr,
            fa_per_hour=evaluation.fa_per_hour,
            # the logit scale, where thresholds near 1 stay apart: 0.99 is 4.6, 0.9999 is 9.2
            threshold_log_odds=log_odds(evaluation.threshold),
            auc=evaluation.auc,
            accuracy=evaluation.accuracy,
            confusion=evaluation.confusion,
            positives_evaluated=evaluation.positives,
            negative_clips_evaluated=evaluation.negative_clips,
            negative_hours=evaluation.negative_hours,
            false_accepts=evaluation.false_accepts,
            fa_per_hour_upper=evaluation.fa_per_hour_upper,
            hours_to_decide=evaluation.hours_to_decide,
            calibration_hours=evaluation.calibration_hours,
            onnx_parity_max_abs_diff=exported.parity,
            best_epoch=best_epoch + 1,
            det_curve=[
                CurvePoint(threshold=p.threshold, frr=p.frr, fa_per_hour=p.fa_per_hour)
                for p in evaluation.curve
            ],
        ),
        data=DataSummary(
            train={
                label: data.count("train", label) for label in ("positive", "negative", "noise")
            },
            val={label: data.count("val", label) for label in ("positive", "negative", "noise")},
            skipped=[{"clip_id": s.clip_id, "reason": s.reason} for s in data.skipped],
            vad_doubted=[{"clip_id": s.clip_id, "reason": s.reason} for s in data.doubted],
        ),
        dataset_sha256=data.dataset_sha256,
        config=config.model_dump(mode="json"),
        tensorrt=tensorrt,
        timings_seconds={k: round(v, 2) for k, v in timings.items()},
        versions=_versions(),
        created=utcnow().isoformat(),
    )
