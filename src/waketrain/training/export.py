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
from waketrain.store.files import atomic_write_bytes
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


MAX_ENGINE_BATCH = 64  # evaluation batches; the board streams batch 1


def _onnx_input(onnx_path: Path) -> tuple[str, int]:
    """The input's name and its sample count (static: only the batch axis is dynamic)."""
    import onnx

    (audio,) = onnx.load(str(onnx_path)).graph.input
    return audio.name, audio.type.tensor_type.shape.dim[1].dim_value


def trtexec_command(trtexec: str, onnx_path: Path, engine_path: Path) -> list[str]:
    """fp16; batch 1 (streaming) to MAX_ENGINE_BATCH; the window as exported."""
    name, samples = _onnx_input(onnx_path)
    return [
        trtexec,
        f"--onnx={onnx_path}",
        f"--saveEngine={engine_path}",
        "--fp16",
        f"--minShapes={name}:1x{samples}",
        f"--optShapes={name}:1x{samples}",
        f"--maxShapes={name}:{MAX_ENGINE_BATCH}x{samples}",
    ]


def build_tensorrt_engine(onnx_path: Path, engine_path: Path) -> str:
    """A TensorRT engine with trtexec, else with the `tensorrt` module; else a note saying why not.

    A failure is a note too: the ONNX model is the contract, the engine an extra for Jetsons.
    """
    trtexec = shutil.which("trtexec") or next((str(p) for p in JETPACK_TRTEXEC if p.exists()), None)
    if trtexec is not None:
        command = trtexec_command(trtexec, onnx_path, engine_path)
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            return f"failed: trtexec exited {result.returncode}: {result.stderr.strip()[-300:]}"
        return f"built {engine_path.name} with trtexec (fp16)"
    try:
        import tensorrt
    except ImportError:
        return "skipped: neither trtexec nor the tensorrt module (TensorRT) is on this machine"
    try:
        return _build_with_tensorrt_module(tensorrt, onnx_path, engine_path)
    except Exception as exc:  # a driver or TensorRT version problem must not fail the job
        return f"failed: TensorRT {tensorrt.__version__}: {type(exc).__name__}: {exc}"[:400]


def _build_with_tensorrt_module(trt: Any, onnx_path: Path, engine_path: Path) -> str:
    """What trtexec_command asks for, through TensorRT's Python API (8.x and 10.x)."""
    name, samples = _onnx_input(onnx_path)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # TensorRT 8 needs explicit batch asked for; 10 has only that and deprecates the flag.
    explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    network = builder.create_network(0 if explicit is None else 1 << int(explicit))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        return f"failed: TensorRT could not parse the ONNX model: {errors[-300:]}"
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    profile.set_shape(name, (1, samples), (1, samples), (MAX_ENGINE_BATCH, samples))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        return "failed: TensorRT built no engine (its log is in the worker's output)"
    atomic_write_bytes(engine_path, bytes(engine))
    return f"built {engine_path.name} with TensorRT {trt.__version__}'s Python API (fp16)"


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
