"""The marblenet backend: a small CNN on raw audio, windows augmented on the training device."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.runtime.log_mel import FRAME_HOP_SAMPLES, frames_for
from waketrain.runtime.marblenet_stream import ENCODER_FILE, MarbleNetEncoder, MarbleNetStream
from waketrain.runtime.onnx_model import OnnxWakeModel
from waketrain.runtime.streaming import StreamingParams, score_recording, score_stream
from waketrain.training.augment import TrainingWindows, spec_augment
from waketrain.training.config import TrainConfig
from waketrain.training.data import Example, PreparedData
from waketrain.training.export import PARITY_TOLERANCE, ExportFailed, check_parity, export_onnx
from waketrain.training.fitting import Exported, Fitting
from waketrain.training.model import FeatureClassifier, MarbleNet, parameter_count

VAL_HOP_SECONDS = 0.25


def validation_windows(
    val: list[Example], window: int, phrase_window: int | None = None, hop: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out windows for choosing the checkpoint: each positive centred in the window's
    last `phrase_window` samples (the whole window by default), negatives slid by `hop`."""
    phrase_window = phrase_window or window
    hop = hop or int(VAL_HOP_SECONDS * SAMPLE_RATE_HZ)
    windows, labels = [], []
    for example in val:
        audio = example.samples
        if example.label == "positive":
            slot = np.zeros(window, np.float32)
            clip = audio[:phrase_window]
            start = window - phrase_window + (phrase_window - len(clip)) // 2
            slot[start : start + len(clip)] = clip
            windows.append(slot)
            labels.append(1.0)
        else:
            padded = np.pad(audio, (0, max(0, window - len(audio))))
            for start in range(0, len(padded) - window + 1, hop):
                windows.append(padded[start : start + window])
                labels.append(0.0)
    return np.stack(windows).astype(np.float32), np.array(labels, np.float32)


def score_in_batches(model: nn.Module, windows: np.ndarray, device: torch.device) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(windows), 512):
            batch = torch.from_numpy(windows[start : start + 512]).to(device)
            out.append(model(batch).float().cpu().numpy())
    return np.concatenate(out)


def stream_parity(
    score_audio: Callable[[np.ndarray], np.ndarray],
    full_model: OnnxWakeModel,
    params: StreamingParams,
    val_windows: np.ndarray,
) -> float:
    """Largest difference between the frame-by-frame stream and whole windows through
    wake_model.onnx, on held-out audio played back to back; raises if too big."""
    audio = np.concatenate(list(val_windows[:16]))
    streamed = score_audio(audio)
    whole = score_stream(full_model.score_windows, params, audio)
    worst = float(np.max(np.abs(streamed - whole), initial=0.0))
    if worst > PARITY_TOLERANCE:
        raise ExportFailed(
            f"The board's frame-by-frame front end and wake_model.onnx disagree by up to "
            f"{worst:.4f} (tolerance {PARITY_TOLERANCE})."
        )
    return worst


def marblenet_fitting(
    data: PreparedData,
    config: TrainConfig,
    device: torch.device,
    gen: torch.Generator,
    check_cancel: Callable[[int], None],
    warm_start: Callable[[nn.Module], None],
) -> Fitting:
    use_amp = config.amp and device.type == "cuda"
    model = MarbleNet(config.model)
    warm_start(model)
    model.to(device)
    windows = TrainingWindows(data, config, device)
    val_windows, val_labels = validation_windows(data.val, windows.window)
    steps_per_epoch = -(-windows.per_epoch // config.batch_size)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
    )
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    positive_weight = config.positive_weight or windows.balanced_positive_weight
    loss_fn = nn.BCEWithLogitsLoss(
        pos_weight=torch.tensor(positive_weight, device=device), reduction="none"
    )

    def epochs() -> Iterator[float]:
        for epoch in range(config.epochs):
            model.train()
            total, seen = 0.0, 0
            for audio, labels, weights in windows.epoch(gen):
                check_cancel(epoch)
                with torch.autocast(device.type, enabled=use_amp):
                    with torch.autocast(device.type, enabled=False):
                        features = spec_augment(model.features(audio), config.augment, gen)
                    logits = model.classify(features).float()
                    loss = (loss_fn(logits, labels) * weights).mean()
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                schedule.step()
                total += float(loss.detach()) * len(labels)
                seen += len(labels)
            yield total / max(seen, 1)

    def export(onnx_path: Path) -> Exported:
        # `audio` float32 [batch, samples] at 16 kHz -> `probability` float32 [batch]
        export_onnx(model, onnx_path, torch.zeros(2, windows.window), "audio", dynamic_batch=True)
        # The board's path: `features` [batch, mel, frames] -> `probability` [batch]
        frames = frames_for(windows.window)
        encoder_path = onnx_path.parent / ENCODER_FILE
        example = torch.zeros(2, config.model.mel_bands, frames)
        export_onnx(FeatureClassifier(model), encoder_path, example, "features", True)
        params = StreamingParams(
            sample_rate=SAMPLE_RATE_HZ,
            window_samples=windows.window,
            hop_samples=round(config.hop_seconds * SAMPLE_RATE_HZ),
            smoothing_windows=config.smoothing_windows,
            refractory_seconds=config.refractory_seconds,
        )
        full_model = OnnxWakeModel(onnx_path)
        parity = check_parity(model, full_model.score_windows, val_windows[:64])
        encoder = MarbleNetEncoder(encoder_path, config.model.mel_bands)
        score_audio: Callable[[np.ndarray], np.ndarray]
        if params.hop_samples % FRAME_HOP_SAMPLES == 0:
            # Evaluate what the board runs; it must score what the whole-window model scores.
            def score_audio(audio: np.ndarray) -> np.ndarray:
                return score_recording(MarbleNetStream(encoder, params), audio)

            parity = max(parity, stream_parity(score_audio, full_model, params, val_windows))
        else:
            score_audio = partial(score_stream, full_model.score_windows, params)
        return Exported(
            params=params,
            score_audio=score_audio,
            parity=parity,
            io={
                "input": {"name": "audio", "dtype": "float32", "shape": ["batch", "samples"]},
                "output": {"name": "probability", "dtype": "float32", "shape": ["batch"]},
                "encoder": {
                    "file": ENCODER_FILE,
                    "input": {
                        "name": "features",
                        "dtype": "float32",
                        "shape": ["batch", config.model.mel_bands, frames],
                    },
                    "features": "log-mel, 64 ms FFT of a 25 ms Hann window every 10 ms, "
                    "mean removed per window (runtime/log_mel.py)",
                },
            },
        )

    return Fitting(
        model=model,
        epochs=epochs(),
        score_val=lambda: score_in_batches(model, val_windows, device),
        val_labels=val_labels,
        windows_per_epoch=windows.per_epoch,
        summary=f"device {device} (amp {use_amp}), {parameter_count(model)} parameters, "
        f"{steps_per_epoch} steps per epoch, positive class weight {positive_weight:.2f}",
        export=export,
        amp=use_amp,
    )
