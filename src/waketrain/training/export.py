"""Export: ONNX with a parity check, optional TensorRT engine, plots."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from waketrain.store.errors import WaketrainError
from waketrain.training.evaluate import EvaluationResult

PARITY_TOLERANCE = 1e-3
ONNX_OPSET = 17
# JetPack installs trtexec here, off the PATH.
JETPACK_TRTEXEC = (Path("/usr/src/tensorrt/bin/trtexec"),)


class ExportFailed(WaketrainError):
    """The exported model does not behave like the trained one."""


def export_onnx(
    model: nn.Module, path: Path, example: torch.Tensor, input_name: str, dynamic_batch: bool
) -> None:
    """`model(example)` as ONNX: input `input_name`, output `probability`; written atomically."""
    model = model.cpu().eval()
    names = (input_name, "probability")
    tmp = path.with_suffix(".onnx.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            input_names=[input_name],
            output_names=["probability"],
            dynamic_axes={name: {0: "batch"} for name in names} if dynamic_batch else None,
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    tmp.replace(path)


def check_parity(
    model: nn.Module, onnx_scores: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray
) -> float:
    """Largest difference between ONNX Runtime and PyTorch on real inputs; raises if too big."""
    model = model.cpu().eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs)).numpy().reshape(-1)
    worst = float(np.max(np.abs(expected - onnx_scores(inputs)), initial=0.0))
    if worst > PARITY_TOLERANCE:
        raise ExportFailed(
            f"ONNX Runtime and PyTorch disagree by up to {worst:.4f} (tolerance "
            f"{PARITY_TOLERANCE}); the export is not trustworthy."
        )
    return worst


def build_tensorrt_engine(onnx_path: Path, engine_path: Path) -> str:
    """A TensorRT engine when trtexec is installed; otherwise a note saying it was skipped."""
    trtexec = shutil.which("trtexec") or next((str(p) for p in JETPACK_TRTEXEC if p.exists()), None)
    if trtexec is None:
        return "skipped: trtexec (TensorRT) is not installed on this machine"
    result = subprocess.run(
        [
            trtexec,
            f"--onnx={onnx_path}",
            f"--saveEngine={engine_path}",
            "--fp16",
            "--minShapes=audio:1x16000",
            "--optShapes=audio:1x16000",
            "--maxShapes=audio:64x32000",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        return f"failed: trtexec exited {result.returncode}: {result.stderr.strip()[-300:]}"
    return f"built {engine_path.name} with trtexec (fp16)"


def _pyplot() -> Any:
    """matplotlib without a display (the worker runs headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_det_curve(evaluation: EvaluationResult, path: Path) -> None:
    plt = _pyplot()
    fa = np.array([p.fa_per_hour for p in evaluation.curve])
    frr = np.array([p.frr for p in evaluation.curve]) * 100
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    ax.plot(np.maximum(fa, 0.01), frr, marker=".", lw=1)
    ax.scatter(
        [max(evaluation.fa_per_hour, 0.01)], [evaluation.frr * 100], color="red", zorder=3,
        label=f"threshold {evaluation.threshold:.3f}",
    )  # fmt: skip
    ax.axvline(evaluation.target_fa_per_hour, color="grey", ls="--", lw=1, label="target FA/h")
    ax.set_xscale("log")
    ax.set_xlabel(f"false accepts per hour ({evaluation.negative_hours * 60:.1f} min of audio)")
    ax.set_ylabel("false rejects (%)")
    ax.set_title("DET: streaming, held-out audio")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_confusion_matrix(evaluation: EvaluationResult, path: Path) -> None:
    plt = _pyplot()
    c = evaluation.confusion
    grid = np.array(
        [[c["true_positive"], c["false_negative"]], [c["false_positive"], c["true_negative"]]]
    )
    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=120)
    ax.imshow(grid, cmap="Blues")
    for (i, j), value in np.ndenumerate(grid):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=14)
    ax.set_xticks([0, 1], ["detected", "not detected"])
    ax.set_yticks([0, 1], ["wake phrase", "other audio"])
    ax.set_title(f"held-out clips at threshold {evaluation.threshold:.3f}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
