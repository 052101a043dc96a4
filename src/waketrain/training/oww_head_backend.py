"""The oww_head backend: a small head over openWakeWord's frozen speech embeddings.

The exported `wake_model.onnx` takes `[1, 16, 96]` embeddings and returns `[1, 1]`, the
openWakeWord model format that the TARS wake service loads as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.runtime.oww_model import OwwHeadModel, head_params
from waketrain.runtime.speech_embedding import EMBEDDING_DIM, HEAD_EMBEDDINGS, SpeechEmbedder
from waketrain.store.errors import InvalidInput
from waketrain.synth.generate import SyntheticSet
from waketrain.training.bank_use import HardNegativeMiner
from waketrain.training.config import HeadConfig, TrainConfig
from waketrain.training.data import PreparedData
from waketrain.training.export import check_parity, export_onnx
from waketrain.training.fitting import Exported, Fitting
from waketrain.training.head_data import HeadExampleBuilder, HeadExamples
from waketrain.training.model import parameter_count


class OwwHead(nn.Module):
    """openWakeWord's DNN head (flatten, two LayerNorm'd hidden layers, one logit), or
    `members` of them side by side, trained on the same batches from their own starting
    weights, their probabilities averaged: one head fires on a stretch of speech that the
    others score low, so the average keeps non-phrase audio further from the phrase."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.members = nn.ModuleList(
            nn.Sequential(
                nn.Flatten(),  # (B, 16, 96) -> (B, 1536)
                nn.Linear(HEAD_EMBEDDINGS * EMBEDDING_DIM, config.hidden),
                nn.LayerNorm(config.hidden),
                nn.ReLU(),
                nn.Dropout(config.dropout),
                nn.Linear(config.hidden, config.hidden),
                nn.LayerNorm(config.hidden),
                nn.ReLU(),
                nn.Linear(config.hidden, 1),
            )
            for _ in range(config.members)
        )
        self.register_load_state_dict_pre_hook(_one_head_as_first_member)  # type: ignore[no-untyped-call]

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([member(x) for member in self.members], dim=1)  # (B, members)

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.member_logits(x)).mean(dim=1)  # (B,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.probability(x)[:, None]  # (B, 1): openWakeWord reads [0][0]


def _one_head_as_first_member(
    module: nn.Module, state_dict: dict[str, torch.Tensor], prefix: str, *_: object
) -> None:
    """A head saved before `members` existed (layers under `net.`) loads as the first one, so
    a job warm-starts from an older job's checkpoint."""
    for key in [k for k in state_dict if k.startswith(f"{prefix}net.")]:
        state_dict[f"{prefix}members.0.{key.removeprefix(f'{prefix}net.')}"] = state_dict.pop(key)


@dataclass
class HeadData:
    train: HeadExamples
    val: HeadExamples
    counts: dict[str, int]


def build_head_data(
    data: PreparedData,
    synthetic: SyntheticSet | None,
    config: TrainConfig,
    builder: HeadExampleBuilder,
    progress: Callable[[float], None],
) -> HeadData:
    """Embedded, augmented windows of every clip: real, synthetic, and the held-out split."""
    h, synth = config.head, config.synth
    train, val = HeadExamples(), HeadExamples()
    counts = {"real_positive": 0, "synthetic_positive": 0, "fragment": 0, "confusable": 0,
              "negative": 0}  # fmt: skip
    real_positives = [] if synth.use == "only" else [
        e.samples for e in data.train if e.label == "positive"
    ]  # fmt: skip
    synthetic_clips = synthetic.clips if synthetic else []
    # (kind, source, clip, variant, weight); kind: positive | confusable | speech | negative |
    # noise; weight: 1 for real clips but captured false wakes, synth.weight for synthetic ones
    work: list[tuple[str, str, np.ndarray, int, float]] = [
        ("positive", "real", clip, v, 1.0)
        for clip in real_positives
        for v in range(h.positive_variants)
    ]
    work += [(c.kind, "synthetic", c.samples, 0, synth.weight) for c in synthetic_clips]
    work += [
        (e.label, "real", e.samples, v, e.weight)
        for e in data.train
        if e.label != "positive"
        for v in range(h.negative_variants)
    ]
    for i, (kind, source, clip, variant, weight) in enumerate(work):
        if kind == "positive":
            windows, labels = builder.phrase(clip, variant)
            hard = labels < 0.5
            train.add(windows, labels, np.where(hard, weight * h.hard_negative_weight, weight))
            counts[f"{source}_positive"] += int((~hard).sum())
            counts["fragment"] += int(hard.sum())
        elif kind == "confusable":
            windows, _ = builder.phrase(clip, variant)
            train.add(windows, 0.0, weight * h.hard_negative_weight)
            counts["confusable"] += len(windows)
        else:  # negative, noise, synthetic everyday speech
            windows = builder.background_windows(clip, variant, is_noise=kind == "noise")
            train.add(windows, 0.0, weight)
            counts["negative"] += len(windows)
        if i % 50 == 0:
            progress(i / (len(work) + len(data.val)))
    for e in data.val:
        if e.label == "positive":
            windows, labels = builder.phrase(e.samples, 0)
            val.add(windows[labels > 0.5], 1.0, 1.0)
        else:
            val.add(builder.background_windows(e.samples, 0, e.label == "noise"), 0.0, 1.0)
    progress(1.0)
    return HeadData(train, val, counts)


def head_fitting(
    head_data: HeadData,
    config: TrainConfig,
    device: torch.device,
    gen: torch.Generator,
    check_cancel: Callable[[int], None],
    warm_start: Callable[[nn.Module], None],
    embedder: SpeechEmbedder,
    miner: HardNegativeMiner | None = None,
) -> Fitting:
    x, y, w = (torch.from_numpy(a).to(device) for a in head_data.train.arrays())
    val_x, val_y, _ = head_data.val.arrays()
    if not (y > 0.5).any():
        raise InvalidInput("No positive training windows: add positive clips or synthetic data.")
    model = OwwHead(config.head)
    warm_start(model)
    model.to(device)
    bank_windows = min(config.bank.windows_per_epoch, miner.n_windows) if miner else 0
    steps_per_epoch = -(-(len(y) + bank_windows) // config.batch_size)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
    )
    positives = y > 0.5
    balanced = float(w[~positives].sum() / w[positives].sum())
    positive_weight = config.positive_weight or balanced
    w = torch.where(positives, w * positive_weight, w)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")

    def score(windows: np.ndarray) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            return torch.cat([
                model.probability(torch.from_numpy(windows[i : i + 4096]).to(device))
                for i in range(0, len(windows), 4096)
            ]).cpu().numpy()  # fmt: skip

    def with_bank(epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """This epoch's examples: the job's own, and bank windows mined with the model so far."""
        if miner is None or bank_windows == 0:
            return x, y, w
        extra = torch.from_numpy(miner.epoch_windows(score if epoch else None)).to(device)
        n = len(extra)
        return (
            torch.cat([x, extra]),
            torch.cat([y, torch.zeros(n, device=device)]),
            torch.cat([w, torch.full((n,), config.bank.weight, device=device)]),
        )

    def epochs() -> Iterator[float]:
        for epoch in range(config.epochs):
            ex, ey, ew = with_bank(epoch)
            model.train()
            total = 0.0
            order = torch.randperm(len(ey), generator=gen, device=device)
            for start in range(0, len(order), config.batch_size):
                check_cancel(epoch)
                batch = order[start : start + config.batch_size]
                logits = model.member_logits(ex[batch])  # each member learns on its own
                targets = ey[batch, None].expand_as(logits)
                loss = (loss_fn(logits, targets).mean(dim=1) * ew[batch]).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total += float(loss.detach()) * len(batch)
            yield total / len(ey)

    def score_val() -> np.ndarray:
        return score(val_x)

    def export(onnx_path: Path) -> Exported:
        # openWakeWord's model format: `[1, 16, 96]` float32 embeddings -> `[1, 1]` probability
        example = torch.zeros(1, HEAD_EMBEDDINGS, EMBEDDING_DIM)
        export_onnx(model, onnx_path, example, "embeddings", dynamic_batch=False)
        params = head_params(SAMPLE_RATE_HZ, config.smoothing_windows, config.refractory_seconds)
        head = OwwHeadModel(onnx_path, embedder)
        return Exported(
            params=params,
            score_audio=partial(head.score_stream, params=params),
            parity=check_parity(model, head.score_embeddings, val_x[:64]),
            score_windows=head.score_embeddings,
            io={
                "input": {"name": "embeddings", "dtype": "float32", "shape": [1, 16, 96]},
                "output": {"name": "probability", "dtype": "float32", "shape": [1, 1]},
                "features": "openWakeWord melspectrogram + embedding_model (pyopen-wakeword "
                "tflite, same as openWakeWord's ONNX), 16 kHz, one embedding per 80 ms",
            },
        )

    return Fitting(
        model=model,
        epochs=epochs(),
        score_val=score_val,
        val_labels=val_y,
        windows_per_epoch=len(y) + bank_windows,
        summary=f"device {device}, {parameter_count(model)} parameters, {steps_per_epoch} steps "
        f"per epoch, positive class weight {positive_weight:.2f}, windows {head_data.counts}, "
        f"negative bank windows per epoch {bank_windows}",
        export=export,
    )
