"""train(): one job from registry clips to an exported, evaluated model. Read top to bottom:
config, data, model, loop, evaluation, export."""

from __future__ import annotations

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
from waketrain.runtime.onnx_model import OnnxWakeModel
from waketrain.runtime.streaming import StreamingParams
from waketrain.store.artifacts import record_artifact
from waketrain.store.errors import InvalidInput, NotFound, WaketrainError
from waketrain.store.files import atomic_write_json
from waketrain.store.models import utcnow
from waketrain.store.registry import Registry
from waketrain.training.augment import TrainingWindows, spec_augment
from waketrain.training.config import TrainConfig
from waketrain.training.data import PreparedData, prepare_data, read_folder_audio
from waketrain.training.evaluate import EvaluationResult, evaluate_streaming, frame_positives
from waketrain.training.export import (
    build_tensorrt_engine,
    check_parity,
    export_onnx,
    plot_confusion_matrix,
    plot_det_curve,
)
from waketrain.training.model import MarbleNet, parameter_count

STAGES = ("data_prep", "training", "eval", "export")
# Share of the whole job each stage takes, for one progress bar.
STAGE_WEIGHTS = {"data_prep": 0.1, "training": 0.75, "eval": 0.1, "export": 0.05}
VAL_HOP_SECONDS = 0.25


class JobCancelled(WaketrainError):
    """The operator cancelled the job; checked between batches."""


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
    metadata: dict[str, Any]
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


def seed_everything(seed: int, device: torch.device) -> torch.Generator:
    """Seed every source of randomness; augmentation draws from the returned generator."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator(device=device).manual_seed(seed)


def validation_windows(data: PreparedData, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out windows for choosing the checkpoint: centred positives, sliding negatives."""
    windows, labels = [], []
    hop = int(VAL_HOP_SECONDS * SAMPLE_RATE_HZ)
    for example in data.val:
        audio = example.samples
        if example.label == "positive":
            slot = np.zeros(window, np.float32)
            clip = audio[:window]
            start = (window - len(clip)) // 2
            slot[start : start + len(clip)] = clip
            windows.append(slot)
            labels.append(1.0)
        else:
            padded = np.pad(audio, (0, max(0, window - len(audio))))
            for start in range(0, len(padded) - window + 1, hop):
                windows.append(padded[start : start + window])
                labels.append(0.0)
    return np.stack(windows).astype(np.float32), np.array(labels, np.float32)


def recall_at_low_false_alarm(scores: np.ndarray, labels: np.ndarray) -> float:
    """Share of held-out positives scoring above every held-out negative window but 0.5 %.

    The checkpoint is picked by what an operator feels (wakes caught while false wakes
    stay rare), not by validation loss.
    """
    negatives = scores[labels < 0.5]
    threshold = float(np.quantile(negatives, 0.995)) if len(negatives) else 0.5
    return float(np.mean(scores[labels > 0.5] > threshold))


def score_in_batches(model: nn.Module, windows: np.ndarray, device: torch.device) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(windows), 512):
            batch = torch.from_numpy(windows[start : start + 512]).to(device)
            out.append(model(batch).float().cpu().numpy())
    return np.concatenate(out)


def load_warm_start(registry: Registry, job_id: str, model: MarbleNet, config: TrainConfig) -> None:
    path = registry.layout.jobs / job_id / "checkpoints" / "best.pt"
    if not path.exists():
        raise NotFound(f"No checkpoint for job {job_id!r} ({path}); pick a finished job.")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    if checkpoint["config"]["model"] != config.model.model_dump():
        raise InvalidInput(
            f"Job {job_id} trained a different model shape ({checkpoint['config']['model']}); "
            "warm start needs the same model settings."
        )
    model.load_state_dict(checkpoint["model"])


def _versions() -> dict[str, str]:
    import onnxruntime

    return {
        "waketrain": __version__,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


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
    log.report("data_prep", 0.0, f"preparing dataset {dataset_id}")
    data = prepare_data(registry, dataset_id, config, noise_dirs, rir_dirs)
    eval_negatives = [e.samples for e in data.val if e.label != "positive"]
    for folder in eval_negative_dirs:
        eval_negatives += read_folder_audio(folder)
    for skipped in data.skipped:
        log.line(f"skipped clip {skipped.clip_id}: {skipped.reason}")
    split = {
        f"{split}_{label}": data.count(split, label)
        for split in ("train", "val")
        for label in ("positive", "negative", "noise")
    }
    log.report("data_prep", 1.0, f"split {split}; skipped {len(data.skipped)}", **split)
    timings["data_prep"] = time.perf_counter() - started

    # --- model ----------------------------------------------------------------------------
    device = resolve_device(config.device)
    use_amp = config.amp and device.type == "cuda"
    gen = seed_everything(config.seed, device)
    model = MarbleNet(config.model)
    if init_from:
        load_warm_start(registry, init_from, model, config)
    model.to(device)
    windows = TrainingWindows(data, config, device)
    window_samples = windows.window
    val_windows, val_labels = validation_windows(data, window_samples)
    steps_per_epoch = -(-windows.per_epoch // config.batch_size)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
    )
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    positive_weight = config.positive_weight or windows.balanced_positive_weight
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(positive_weight, device=device))
    log.line(
        f"device {device} (amp {use_amp}), {parameter_count(model)} parameters, "
        f"{steps_per_epoch} steps per epoch, positive class weight {positive_weight:.2f}"
    )

    # --- loop -----------------------------------------------------------------------------
    phase_start = time.perf_counter()
    best: tuple[float, float, int] | None = None  # (recall, -val_loss, epoch)
    windows_seen = 0
    for epoch in range(config.epochs):
        model.train()
        total_loss = 0.0
        for audio, labels in windows.epoch(gen):
            if should_cancel():
                raise JobCancelled(f"Job {job_id} was cancelled during epoch {epoch + 1}.")
            with torch.autocast(device.type, enabled=use_amp):
                with torch.autocast(device.type, enabled=False):
                    features = spec_augment(model.features(audio), config.augment, gen)
                loss = loss_fn(model.classify(features).float(), labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            total_loss += float(loss.detach()) * len(labels)
            windows_seen += len(labels)
        val_scores = score_in_batches(model, val_windows, device)
        val_loss = float(
            nn.functional.binary_cross_entropy(
                torch.from_numpy(val_scores).clamp(1e-6, 1 - 1e-6), torch.from_numpy(val_labels)
            )
        )
        recall = recall_at_low_false_alarm(val_scores, val_labels)
        if best is None or (recall, -val_loss) > best[:2]:
            best = (recall, -val_loss, epoch)
            torch.save(
                {"model": model.state_dict(), "config": config.model_dump(mode="json"),
                 "epoch": epoch, "job_id": job_id},
                checkpoints / "best.pt",
            )  # fmt: skip
        elapsed = time.perf_counter() - phase_start
        eta = elapsed / (epoch + 1) * (config.epochs - epoch - 1)
        log.report(
            "training",
            (epoch + 1) / config.epochs,
            f"epoch {epoch + 1}/{config.epochs} loss {total_loss / max(windows_seen, 1):.4f} "
            f"val_loss {val_loss:.4f} val_recall {recall:.3f} eta {eta:.0f}s",
            epoch=epoch + 1,
            train_loss=total_loss,
            val_loss=val_loss,
            val_recall=recall,
            eta_seconds=eta,
        )
        windows_seen = 0
    timings["training"] = time.perf_counter() - phase_start
    assert best is not None
    checkpoint = torch.load(checkpoints / "best.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(checkpoint["model"])

    # --- evaluation: the exported model, streamed as on the board ---------------------------
    phase_start = time.perf_counter()
    log.report(
        "eval", 0.0, f"exporting ONNX (best epoch {best[2] + 1}) and streaming held-out audio"
    )
    onnx_path = export_dir / "wake_model.onnx"
    export_onnx(model, onnx_path, window_samples)
    params = StreamingParams(
        sample_rate=SAMPLE_RATE_HZ,
        window_samples=window_samples,
        hop_samples=round(config.hop_seconds * SAMPLE_RATE_HZ),
        smoothing_windows=config.smoothing_windows,
        refractory_seconds=config.refractory_seconds,
    )
    val_positives = [e.samples for e in data.val if e.label == "positive"]
    val_background = [e.samples for e in data.val if e.label == "noise"] or eval_negatives
    evaluation = evaluate_streaming(
        OnnxWakeModel(onnx_path).score_windows,
        params,
        frame_positives(val_positives, val_background, config.seed),
        eval_negatives,
        config.target_fa_per_hour,
    )
    log.report(
        "eval",
        1.0,
        f"threshold {evaluation.threshold:.3f}: FRR {evaluation.frr:.1%}, "
        f"{evaluation.fa_per_hour:.2f} FA/h, AUC {evaluation.auc:.3f}. {evaluation.note}",
        frr=evaluation.frr,
        fa_per_hour=evaluation.fa_per_hour,
    )
    timings["eval"] = time.perf_counter() - phase_start

    # --- export ---------------------------------------------------------------------------
    phase_start = time.perf_counter()
    parity = check_parity(model, onnx_path, val_windows[:64])
    torch.save(checkpoint, export_dir / "checkpoint.pt")
    tensorrt = build_tensorrt_engine(onnx_path, export_dir / "wake_model.trt")
    plot_det_curve(evaluation, export_dir / "det_curve.png")
    plot_confusion_matrix(evaluation, export_dir / "confusion_matrix.png")
    timings["export"] = time.perf_counter() - phase_start
    timings["total"] = time.perf_counter() - started
    metadata = build_metadata(
        job_id, dataset_id, data, config, params, evaluation, parity, tensorrt, best[2], timings
    )
    metadata["metrics"]["windows_per_second"] = round(
        windows.per_epoch * config.epochs
        / max(timings["training"], 1e-9), 1
    )  # fmt: skip
    atomic_write_json(export_dir / "metadata.json", metadata)
    record_artifact(
        registry,
        job_id,
        {
            "dataset_id": dataset_id,
            "dataset_sha256": data.dataset_sha256,
            "model_id": metadata["model_id"],
            "export_dir": str(export_dir.relative_to(registry.layout.root)),
            "config": metadata["config"],
            "metrics": metadata["metrics"],
            "created": metadata["created"],
        },
    )
    log.report("export", 1.0, f"exported {export_dir}")
    return TrainResult(job_id, job_dir, export_dir, metadata, timings)


def build_metadata(
    job_id: str,
    dataset_id: str,
    data: PreparedData,
    config: TrainConfig,
    params: StreamingParams,
    evaluation: EvaluationResult,
    parity: float,
    tensorrt: str,
    best_epoch: int,
    timings: dict[str, float],
) -> dict[str, Any]:
    """The contract the detector, deploy and people read: everything needed to run and judge."""
    return {
        "model_id": f"{dataset_id}-{job_id[:8]}",
        "job_id": job_id,
        "backend": "marblenet",
        "phrase": data.phrase,
        "dataset_id": dataset_id,
        "sample_rate": SAMPLE_RATE_HZ,
        "window_seconds": config.window_seconds,
        "hop_seconds": params.hop_seconds,
        "threshold": evaluation.threshold,
        "smoothing_windows": config.smoothing_windows,
        "refractory_seconds": config.refractory_seconds,
        "target_fa_per_hour": config.target_fa_per_hour,
        "target_met": evaluation.target_met,
        "threshold_note": evaluation.note,
        "input": {"name": "audio", "dtype": "float32", "shape": ["batch", "samples"]},
        "output": {"name": "probability", "dtype": "float32", "shape": ["batch"]},
        "metrics": {
            "frr": evaluation.frr,
            "fa_per_hour": evaluation.fa_per_hour,
            "auc": evaluation.auc,
            "accuracy": evaluation.accuracy,
            "confusion": evaluation.confusion,
            "positives_evaluated": evaluation.positives,
            "negative_clips_evaluated": evaluation.negative_clips,
            "negative_hours": evaluation.negative_hours,
            "onnx_parity_max_abs_diff": parity,
            "best_epoch": best_epoch + 1,
            "det_curve": [
                {"threshold": p.threshold, "frr": p.frr, "fa_per_hour": p.fa_per_hour}
                for p in evaluation.curve
            ],
        },
        "data": {
            "train": {
                label: data.count("train", label) for label in ("positive", "negative", "noise")
            },
            "val": {label: data.count("val", label) for label in ("positive", "negative", "noise")},
            "skipped": [{"clip_id": s.clip_id, "reason": s.reason} for s in data.skipped],
        },
        "dataset_sha256": data.dataset_sha256,
        "config": config.model_dump(mode="json"),
        "tensorrt": tensorrt,
        "timings_seconds": {k: round(v, 2) for k, v in timings.items()},
        "versions": _versions(),
        "created": utcnow().isoformat(),
    }
