"""The causal backend: the streaming CNN of `causal_model.py` trained on augmented windows.

The data path is marblenet's (`augment.TrainingWindows`: real positives placed, stretched,
reverberated and mixed with noise; negatives; reversed and partial phrases), but each window
is longer than the model's receptive field, and the loss is on the model's logits per 40 ms
hop, only on hops whose receptive field lies inside the window: the first ~29 hops of a
window read zero padding, which on the board only a stream's very start does.

- positive windows: the phrase is placed in the last receptive field of the window, so the
  last hop hears all of it. The loss is the cross-entropy of the highest of the last
  `causal.positive_hops` smoothed probabilities (the mean over `smoothing_windows` hops, as
  the trigger on the board reads them; a max-pooled target): all of them follow the phrase,
  and the model may fire at whichever of them hears it best, instead of being made to fire
  at one hop chosen by where a clip's VAD margins happen to end.
- negative windows (negatives, noise, reversed and partial phrases): every valid hop is a
  negative, mean cross-entropy over them: each is a moment the board could fire.

The features are raw log-mel (`features.LogMel(normalise=False)`), the numbers
`runtime/log_mel.py` computes frame by frame on the board.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.runtime.causal_stream import STEP_FILE, WHOLE_FILE, CausalStepModel, CausalStream
from waketrain.runtime.log_mel import FRAME_HOP_SAMPLES, LogMelFrames, frames_span
from waketrain.runtime.onnx_model import OnnxWakeModel, inference_session
from waketrain.runtime.streaming import StreamingParams, score_recording
from waketrain.training.augment import TrainingWindows, spec_augment
from waketrain.training.causal_export import export_causal_stream
from waketrain.training.causal_mining import BankAudioNegatives
from waketrain.training.causal_model import CausalNetConfig, CausalWakeNet
from waketrain.training.config import CAUSAL_HOP_FRAMES, CAUSAL_WINDOW_FRAMES, TrainConfig
from waketrain.training.data import PreparedData
from waketrain.training.export import PARITY_TOLERANCE, ExportFailed, check_parity, export_onnx
from waketrain.training.features import LogMel
from waketrain.training.fitting import Exported, Fitting
from waketrain.training.marblenet_backend import validation_windows
from waketrain.training.model import parameter_count
from waketrain.training.negative_bank import BankFeatures, NegativeBank

CHUNK_SAMPLES = 1280  # 80 ms: what a board reads at a time, for the parity check


class CausalWake(nn.Module):
    """(batch, samples) raw 16 kHz audio -> (batch, frames // hop_frames) wake logits."""

    def __init__(self, config: CausalNetConfig) -> None:
        super().__init__()
        self.features = LogMel(config.mel_bands, normalise=False)
        self.net = CausalWakeNet(config)

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        with torch.autocast(audio.device.type, enabled=False):
            # The DFT convolution overflows float16; the front end stays in float32.
            features: torch.Tensor = self.features(audio.float())  # (B, mel, frames)
        return features

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.net(self.log_mel(audio))  # (B, hops)
        return logits


class LastHopProbability(nn.Module):
    """The project's ONNX contract: (batch, window) audio -> (batch,) probability at the
    window's last hop, whose receptive field the window holds."""

    def __init__(self, model: CausalWake) -> None:
        super().__init__()
        self.model = model

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(audio)[:, -1])


def training_frames(config: TrainConfig) -> int:
    """Frames of a training window: the model's window, then `negative_hops - 1` more hops,
    so that `negative_hops` hops have a full receptive field."""
    return CAUSAL_WINDOW_FRAMES + (config.causal.negative_hops - 1) * CAUSAL_HOP_FRAMES


def bank_negatives(
    bank: NegativeBank, sources: list[BankFeatures], config: TrainConfig
) -> BankAudioNegatives | None:
    """Training windows from the bank's training sources' audio; None without any."""
    frames = training_frames(config)
    negatives = BankAudioNegatives(
        bank, sources, frames, frames_span(frames), CAUSAL_HOP_FRAMES, config.seed
    )
    return negatives if negatives else None


def stream_parity(step_path: Path, whole_path: Path, params: StreamingParams,
                  audio: np.ndarray) -> float:  # fmt: skip
    """Largest difference in wake probability between the board's stream (state carried,
    80 ms chunks) and the whole-stretch graph over the same audio; raises if too big."""
    step = CausalStepModel(step_path)
    stream = CausalStream(step, params)
    streamed = np.concatenate(
        [stream.logits(audio[i : i + CHUNK_SAMPLES]) for i in range(0, len(audio), CHUNK_SAMPLES)]
    )
    features = LogMelFrames(step.n_mels).frames(audio).T[None]  # (1, mel, frames)
    session = inference_session(whole_path)
    (whole,) = session.run(["logits"], {"features": np.ascontiguousarray(features)})
    whole = whole[0, : len(streamed)]
    if len(streamed) == 0 or len(whole) != len(streamed):
        raise ExportFailed(
            f"The board's stream gave {len(streamed)} scores where the whole-stretch model "
            f"gave {len(whole)}; the step graph does not stream this model."
        )
    worst = float(np.max(np.abs(_sigmoid(streamed) - _sigmoid(whole))))
    if worst > PARITY_TOLERANCE:
        raise ExportFailed(
            f"The board's stream ({STEP_FILE}) and {WHOLE_FILE} disagree by up to {worst:.4f} "
            f"in wake probability (tolerance {PARITY_TOLERANCE}); the export is not trustworthy."
        )
    return worst


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    return out


def causal_fitting(
    data: PreparedData,
    config: TrainConfig,
    device: torch.device,
    gen: torch.Generator,
    check_cancel: Callable[[int], None],
    warm_start: Callable[[nn.Module], None],
    bank_audio: BankAudioNegatives | None = None,
) -> Fitting:
    """`bank_audio` (bank_negatives): each epoch adds `causal.bank_windows` windows of the
    negative bank's training audio, the hard ones mined by the model being trained."""
    use_amp = config.amp and device.type == "cuda"
    model = CausalWake(CausalNetConfig())
    warm_start(model)
    model.to(device)
    net, first_valid = model.net, model.net.first_valid_hop
    window = frames_span(training_frames(config))
    phrase_window = frames_span(net.receptive_field_frames)  # what the last hop hears
    windows = TrainingWindows(data, config, device, window=window, phrase_window=phrase_window)
    valid_hop_samples = config.causal.negative_hops * net.hop_frames * FRAME_HOP_SAMPLES
    val_windows, val_labels = validation_windows(data.val, window, phrase_window,
                                                 valid_hop_samples)  # fmt: skip
    steps_per_epoch = -(-windows.per_epoch // config.batch_size)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
    )
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    positive_weight = config.positive_weight or windows.balanced_positive_weight
    positive_hops = config.causal.positive_hops
    n_bank = config.causal.bank_windows if bank_audio else 0

    smoothing = config.smoothing_windows

    def positive_peak(logits: torch.Tensor) -> torch.Tensor:
        """(B, hops) -> (B,): the highest of the last `positive_hops` smoothed probabilities,
        each the mean over `smoothing_windows` hops, as the board's trigger reads them: a
        spike at one 40 ms hop would be diluted there."""
        span = min(positive_hops + smoothing - 1, logits.shape[1] - first_valid)
        smoothed = torch.sigmoid(logits[:, -span:]).unfold(1, min(smoothing, span), 1).mean(-1)
        return smoothed.max(dim=1).values

    def window_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, hops) logits, (B,) labels -> (B,) loss: on the smoothed peak for positives,
        the mean over valid hops for negatives."""
        positive = -torch.log(positive_peak(logits).clamp_min(1e-7)) * positive_weight
        valid = logits[:, first_valid:]  # (B, negative_hops)
        bce = nn.functional.binary_cross_entropy_with_logits
        negative = bce(valid, torch.zeros_like(valid), reduction="none").mean(dim=1)
        return torch.where(labels > 0.5, positive, negative)

    def score_val() -> np.ndarray:
        """Wake probability of each validation window: its last hops for a positive, every
        valid hop for a negative; the highest, as the trigger sees it."""
        model.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(val_windows), 256):
                batch = torch.from_numpy(val_windows[start : start + 256]).to(device)
                labels = torch.from_numpy(val_labels[start : start + 256]).to(device)
                logits = model(batch).float()
                peak = torch.where(
                    labels > 0.5,
                    positive_peak(logits),
                    torch.sigmoid(logits[:, first_valid:].max(dim=1).values),
                )
                out.append(peak.cpu().numpy())
        return np.concatenate(out)

    def hop_logits(audio: np.ndarray) -> np.ndarray:
        """(n, samples) -> (n, hops) logits of the model as it stands."""
        model.eval()
        with torch.no_grad():
            return np.concatenate([
                model(torch.from_numpy(audio[i : i + 8]).to(device)).float().cpu().numpy()
                for i in range(0, len(audio), 8)
            ])  # fmt: skip

    def bank_batches(epoch: int) -> Iterator[torch.Tensor]:
        """The epoch's bank windows, shuffled, one share per training step (mined here, before
        the epoch's training steps, with the model in eval mode)."""
        if bank_audio is None:
            return itertools.repeat(torch.zeros((0, window), device=device))
        chosen = bank_audio.epoch_windows(n_bank, config.bank.hard_share,
                                          config.causal.mining_seconds,
                                          hop_logits if epoch else None)  # fmt: skip
        order = np.random.default_rng(config.seed + epoch).permutation(len(chosen))
        shuffled = torch.from_numpy(chosen[order])
        share = -(-len(chosen) // steps_per_epoch)
        return (shuffled[i * share : (i + 1) * share].to(device) for i in itertools.count())

    def epochs() -> Iterator[float]:
        for epoch in range(config.epochs):
            extra = bank_batches(epoch)
            model.train()
            total, seen = 0.0, 0
            for audio, labels, weights in windows.epoch(gen):
                check_cancel(epoch)
                bank_windows = next(extra)
                if len(bank_windows):
                    audio = torch.cat([audio, bank_windows])
                    labels = torch.cat([labels, labels.new_zeros(len(bank_windows))])
                    weights = torch.cat(
                        [weights, weights.new_full((len(bank_windows),), config.bank.weight)]
                    )
                with torch.autocast(device.type, enabled=use_amp):
                    features = model.log_mel(audio)  # (B, mel, frames), raw
                    # Stripes are zeroed around each frame's mean over the bands, which the
                    # stem's zero-sum filters do not hear: a masked frame is a silent one.
                    centred = features - features.mean(dim=1, keepdim=True)
                    logits: torch.Tensor = net(spec_augment(centred, config.augment, gen))
                    loss = (window_loss(logits.float(), labels) * weights).mean()
                optimizer.zero_grad(set_to_none=True)
                torch.autograd.backward(scaler.scale(loss))  # Tensor.backward is untyped
                scaler.step(optimizer)
                scaler.update()
                schedule.step()
                total += float(loss.detach()) * len(labels)
                seen += len(labels)
            yield total / max(seen, 1)

    def export(onnx_path: Path) -> Exported:
        folder = onnx_path.parent
        files = export_causal_stream(net, folder, config.causal.steps_per_call)
        params = StreamingParams(
            sample_rate=SAMPLE_RATE_HZ,
            window_samples=round(config.window_seconds * SAMPLE_RATE_HZ),
            hop_samples=round(config.hop_seconds * SAMPLE_RATE_HZ),
            smoothing_windows=config.smoothing_windows,
            refractory_seconds=config.refractory_seconds,
        )
        # `audio` float32 [batch, window] at 16 kHz -> `probability` float32 [batch]
        contract = LastHopProbability(model)
        export_onnx(contract, onnx_path, torch.zeros(2, params.window_samples), "audio", True)
        tails = np.ascontiguousarray(val_windows[:64, -params.window_samples :])
        parity = check_parity(contract, OnnxWakeModel(onnx_path).score_windows, tails)
        # Held-out audio back to back, streamed as the board streams it.
        held_out = np.concatenate(list(val_windows[:16]))
        parity = max(parity, stream_parity(files.step, files.whole, params, held_out))
        step = CausalStepModel(files.step)

        def score_audio(audio: np.ndarray) -> np.ndarray:
            return score_recording(CausalStream(step, params), audio)

        mel = net.config.mel_bands
        return Exported(
            params=params,
            score_audio=score_audio,
            parity=parity,
            io={
                "input": {
                    "name": "audio",
                    "dtype": "float32",
                    "shape": ["batch", params.window_samples],
                },
                "output": {"name": "probability", "dtype": "float32", "shape": ["batch"]},
                "stream": {
                    "file": STEP_FILE,
                    "whole_file": WHOLE_FILE,
                    "frames": {
                        "name": "frames",
                        "dtype": "float32",
                        "shape": [1, mel, step.frames_per_call],
                    },
                    "logits": {
                        "name": "logits",
                        "dtype": "float32",
                        "shape": [1, step.steps_per_call],
                    },
                    "state": "state_<layer> in, next_state_<layer> out, zeros at a stream's "
                    "start (shapes in the graph)",
                    "features": "raw log-mel, 64 ms FFT of a 25 ms Hann window every 10 ms "
                    "(runtime/log_mel.py LogMelFrames); one logit per "
                    f"{net.hop_frames} frames from the last {net.receptive_field_frames}",
                },
            },
        )

    return Fitting(
        model=model,
        epochs=epochs(),
        score_val=score_val,
        val_labels=val_labels,
        windows_per_epoch=windows.per_epoch,
        summary=f"device {device} (amp {use_amp}), {parameter_count(model)} parameters, "
        f"{steps_per_epoch} steps per epoch of {window / SAMPLE_RATE_HZ:.2f} s windows "
        f"({config.causal.negative_hops} hops with a full receptive field), positive class "
        f"weight {positive_weight:.2f}"
        + (
            f"; {n_bank} windows an epoch from {bank_audio.hours:.2f} h of the negative bank, "
            f"{config.bank.hard_share:.0%} of them mined"
            if bank_audio
            else ""
        ),
        export=export,
        amp=use_amp,
    )
