"""Training windows built and augmented as batched tensor ops on the training device.

Clips live on the device as one concatenated tensor per bank, so a batch is gathered,
placed, stretched, reverberated and mixed with noise without touching the CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.training.config import AugmentConfig, TrainConfig
from waketrain.training.data import PreparedData

RIR_SAMPLES = SAMPLE_RATE_HZ // 2
QUIET_FLOOR_DBFS = -50.0  # windows quieter than this still get audible noise
POSITIVE, NEGATIVE, REVERSED, FRAGMENT = 0, 1, 2, 3  # kinds of training window
# Microphone colouration: a random gain (dB) at each anchor, linear in log-frequency between.
COLOUR_ANCHORS_HZ = (100.0, 300.0, 800.0, 2000.0, 4000.0, 7000.0)
Uniform = Callable[[int], torch.Tensor]  # n uniform draws in [0, 1), on the batch's device


class AudioBank:
    """Clips concatenated into one device tensor, addressed by (offset, length)."""

    def __init__(self, clips: list[np.ndarray], device: torch.device, min_length: int = 1) -> None:
        padded = [np.pad(c, (0, max(0, min_length - len(c)))) for c in clips]
        lengths = [len(c) for c in padded]
        self.audio = torch.tensor(np.concatenate(padded), dtype=torch.float32, device=device)
        self.lengths = torch.tensor(lengths, device=device)
        self.offsets = torch.tensor(np.concatenate([[0], np.cumsum(lengths)[:-1]]), device=device)

    def __len__(self) -> int:
        return len(self.lengths)

    def crops(
        self,
        idx: torch.Tensor,
        length: int,
        gen: torch.Generator,
        across: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """A random `length`-sample crop of each chosen clip, (B, length).

        Where `across` is set, the crop may run on into the next clip: the end of one word
        and the start of another, as in continuous speech.
        """
        room = (self.lengths[idx] - length + 1).clamp(min=1)
        if across is not None:
            room = torch.where(across, self.lengths[idx], room)
        start = self.offsets[idx] + (_uniform(len(idx), gen, idx.device) * room).long()
        positions = start[:, None] + torch.arange(length, device=idx.device)[None, :]
        return self.audio[positions.clamp(max=len(self.audio) - 1)]

    def place(
        self,
        idx: torch.Tensor,
        window: int,
        speed: torch.Tensor,
        gen: torch.Generator,
        part: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Each clip, resampled by `speed`, at a random position in a silent window, (B, window).

        `part` = (from, to) fractions selects a piece of each clip instead of all of it.
        A clip longer than the window (after stretching) is centred and cut at both ends.
        """
        device = idx.device
        full = self.lengths[idx].float()  # (B,)
        first = (part[0] * full).floor() if part else torch.zeros_like(full)
        lengths = (part[1] * full).floor() - first if part else full
        stretched = lengths / speed
        slack = window - stretched
        # Whole-sample shifts: at speed 1 the clip's samples arrive untouched.
        shift = torch.where(slack > 0, _uniform(len(idx), gen, device) * slack, slack / 2).floor()
        t = torch.arange(window, device=device, dtype=torch.float32)[None, :]
        pos = (t - shift[:, None]) * speed[:, None]  # (B, window) position inside the clip
        valid = (pos >= 0) & (pos <= lengths[:, None] - 1)
        last = (lengths[:, None] - 1).long()
        lo = pos.floor().long().clamp(min=0)
        lo = torch.minimum(lo, last)
        hi = torch.minimum(lo + 1, last)
        frac = (pos - lo.float()).clamp(0, 1)
        base = (self.offsets[idx] + first.long())[:, None]
        a, b = self.audio[base + lo], self.audio[base + hi]
        return (a + (b - a) * frac) * valid


def _uniform(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device)


def _between(
    low: float, high: float, n: int, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    return low + (high - low) * _uniform(n, gen, device)


def _power(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).mean(dim=1)


def add_noise(
    x: torch.Tensor, noise: torch.Tensor, snr_db: torch.Tensor, apply: torch.Tensor
) -> torch.Tensor:
    """Mix `noise` into `x` at `snr_db` (per row) where `apply`; (B, W)."""
    floor = 10 ** (QUIET_FLOOR_DBFS / 10)
    signal = _power(x).clamp(min=floor)
    scale = torch.sqrt(signal / (_power(noise).clamp(min=1e-10) * 10 ** (snr_db / 10)))
    return x + noise * (scale * apply)[:, None]


def synthetic_rirs(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """Exponentially decaying noise with a direct path; RT60 between 0.15 and 0.8 s, (n, L)."""
    t = torch.arange(RIR_SAMPLES, device=device, dtype=torch.float32) / SAMPLE_RATE_HZ
    rt60 = _between(0.15, 0.8, n, gen, device)
    tail = torch.randn(n, RIR_SAMPLES, generator=gen, device=device)
    rir = tail * torch.exp(-6.9 * t[None, :] / rt60[:, None]) * 0.3
    rir[:, 0] = 1.0
    normalised: torch.Tensor = rir / rir.norm(dim=1, keepdim=True)
    return normalised


def reverberate(x: torch.Tensor, rir: torch.Tensor, apply: torch.Tensor) -> torch.Tensor:
    """FFT convolution of each row with its RIR, level kept, where `apply`; (B, W)."""
    n = 1 << (x.shape[1] + rir.shape[1] - 1).bit_length()
    wet = torch.fft.irfft(torch.fft.rfft(x, n) * torch.fft.rfft(rir, n), n)[:, : x.shape[1]]
    wet = wet * torch.sqrt(_power(x) / _power(wet).clamp(min=1e-10))[:, None]
    return torch.where(apply[:, None], wet, x)


def colour(
    x: torch.Tensor,
    anchors_db: torch.Tensor,
    low_cut_hz: torch.Tensor,
    high_cut_hz: torch.Tensor,
    apply: torch.Tensor,
) -> torch.Tensor:
    """Each row through its own microphone: a smooth EQ curve and a band limit, (B, W).

    `anchors_db` (B, len(COLOUR_ANCHORS_HZ)) is the EQ gain at each anchor; below
    `low_cut_hz` and above `high_cut_hz` the response falls off (2nd- and 4th-order
    Butterworth magnitudes), as a small microphone or a loudspeaker's does.
    """
    width = x.shape[1]
    freqs = torch.fft.rfftfreq(width, 1 / SAMPLE_RATE_HZ, device=x.device)
    anchors = torch.log(torch.tensor(COLOUR_ANCHORS_HZ, device=x.device))
    where = torch.log(freqs.clamp(min=1.0)).clamp(anchors[0], anchors[-1])
    upper = torch.searchsorted(anchors, where).clamp(1, len(anchors) - 1)
    t = (where - anchors[upper - 1]) / (anchors[upper] - anchors[upper - 1])
    curve_db = anchors_db[:, upper - 1] * (1 - t) + anchors_db[:, upper] * t  # (B, F)
    ratio_low = freqs[None, :] / low_cut_hz[:, None]
    ratio_high = freqs[None, :] / high_cut_hz[:, None]
    band = ratio_low**2 / torch.sqrt(1 + ratio_low**4) / torch.sqrt(1 + ratio_high**8)
    response = 10 ** (curve_db / 20) * band
    coloured = torch.fft.irfft(torch.fft.rfft(x) * response, width)
    return torch.where(apply[:, None], coloured, x)


def set_level(x: torch.Tensor, rms_dbfs: torch.Tensor, apply: torch.Tensor) -> torch.Tensor:
    """Scale each row to an RMS level in dBFS where `apply`, (B, W)."""
    gain = 10 ** (rms_dbfs / 20) / _power(x).clamp(min=1e-12).sqrt()
    return torch.where(apply[:, None], x * gain[:, None], x)


def overdrive(
    x: torch.Tensor, drive_db: torch.Tensor, soft: torch.Tensor, apply: torch.Tensor
) -> torch.Tensor:
    """A preamp driven `drive_db` past full scale: hard clipping, or tanh saturation where
    `soft`; the result peaks at full scale, as an overdriven recording does. (B, W)."""
    peak = x.abs().amax(dim=1).clamp(min=1e-6)
    driven = x * (10 ** (drive_db / 20) / peak)[:, None]
    distorted = torch.where(soft[:, None], torch.tanh(driven), driven.clamp(-1.0, 1.0))
    return torch.where(apply[:, None], distorted, x)


def _time_stretch(x: np.ndarray, rate: float, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """`x` played `rate` times as fast at the same pitch: a phase vocoder, (len(x) / rate,)."""
    window = np.hanning(n_fft).astype(np.float32)
    padded = np.pad(x, (n_fft // 2, n_fft // 2 + n_fft))
    n_frames = (len(padded) - n_fft) // hop + 1
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]
    spectra = np.fft.rfft(frames * window)
    steps = np.arange(0, n_frames - 1, rate)
    before = steps.astype(int)
    frac = (steps - before)[:, None]
    magnitude = (1 - frac) * np.abs(spectra[before]) + frac * np.abs(spectra[before + 1])
    expected = 2 * np.pi * hop * np.arange(spectra.shape[1]) / n_fft
    advance = np.angle(spectra[before + 1]) - np.angle(spectra[before]) - expected
    advance -= 2 * np.pi * np.round(advance / (2 * np.pi))
    phase = np.angle(spectra[0]) + np.cumsum(
        np.vstack([np.zeros_like(expected), (expected + advance)[:-1]]), axis=0
    )
    frames_out = np.fft.irfft(magnitude * np.exp(1j * phase), n_fft) * window
    length = len(steps) * hop + n_fft
    out, norm = np.zeros(length), np.zeros(length)
    for i, frame in enumerate(frames_out):
        out[i * hop : i * hop + n_fft] += frame
        norm[i * hop : i * hop + n_fft] += window**2
    out = out / np.maximum(norm, 1e-3)
    return out[n_fft // 2 : n_fft // 2 + round(len(x) / rate)].astype(np.float32)


def shift_voice(x: np.ndarray, semitones: float) -> np.ndarray:
    """The clip spoken by a smaller (up) or larger (down) voice at the same speed.

    Pitch and formants move together by `semitones`, as between a man, a woman and a
    child: resampling moves both and changes the length, the phase vocoder restores it.
    """
    if len(x) < 512:  # shorter than one vocoder frame: nothing to shift
        return x
    factor = 2 ** (semitones / 12)
    stretched = _time_stretch(x, 1 / factor)
    positions = np.minimum(np.arange(len(x)) * factor, len(stretched) - 1)
    shifted = np.interp(positions, np.arange(len(stretched)), stretched)
    # the vocoder's smeared phases cost some energy: the voice keeps its level
    shifted *= np.sqrt(np.mean(x**2) / max(float(np.mean(shifted**2)), 1e-12))
    return np.asarray(shifted, dtype=np.float32)


def widen_voice(x: torch.Tensor, a: AugmentConfig, uniform: Uniform) -> torch.Tensor:
    """The finished mix as other microphones, levels and preamps would record it, (B, W).

    A random microphone colouration; then either an absolute level (quiet and distant to
    loud) or a relative gain; then, for some, overdrive. The operator's 50 clips come from
    one or two microphones at one level; the board hears every voice at every level.
    """
    b = len(x)

    def between(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * uniform(b)

    n_anchors = len(COLOUR_ANCHORS_HZ)
    anchors_db = (uniform(b * n_anchors).view(b, n_anchors) * 2 - 1) * a.colour_db
    x = colour(
        x,
        anchors_db,
        between(a.low_cut_hz_min, a.low_cut_hz_max),
        between(a.high_cut_hz_min, a.high_cut_hz_max),
        uniform(b) < a.colour_probability,
    )
    absolute = uniform(b) < a.level_probability
    x = set_level(x, between(a.level_dbfs_min, a.level_dbfs_max), absolute)
    gain = 10 ** (between(a.gain_db_min, a.gain_db_max) / 20)
    x = torch.where(absolute[:, None], x, x * gain[:, None])
    soft = uniform(b) < 0.5
    x = overdrive(x, between(0.0, a.overdrive_db_max), soft, uniform(b) < a.overdrive_probability)
    return x.clamp(-1.0, 1.0)


def spec_augment(
    features: torch.Tensor, config: AugmentConfig, gen: torch.Generator
) -> torch.Tensor:
    """Zero random time and frequency stripes of (B, mel, T) features (0 is the mean)."""
    b, n_mels, n_frames = features.shape
    device = features.device
    keep = torch.ones_like(features, dtype=torch.bool)
    chosen = _uniform(b, gen, device) < config.spec_augment_probability
    for count, width, size, axis in (
        (config.time_masks, config.time_mask_frames, n_frames, 2),
        (config.freq_masks, config.freq_mask_bands, n_mels, 1),
    ):
        for _ in range(count):
            w = (_uniform(b, gen, device) * (width + 1)).long()
            start = (_uniform(b, gen, device) * (size - w + 1).clamp(min=1)).long()
            pos = torch.arange(size, device=device)[None, :]
            stripe = (pos >= start[:, None]) & (pos < (start + w)[:, None]) & chosen[:, None]
            keep &= ~(stripe[:, None, :] if axis == 2 else stripe[:, :, None])
    return features * keep


class TrainingWindows:
    """Per epoch: every positive (placed, stretched) and background windows, augmented.

    Windows are `window` samples (default: the config's window). The phrase, and the
    reversed and partial phrases made from it, are placed in the last `phrase_window`
    samples (default: all of it); what comes before is silence, then noise like the rest.
    """

    def __init__(
        self,
        data: PreparedData,
        config: TrainConfig,
        device: torch.device,
        window: int | None = None,
        phrase_window: int | None = None,
    ) -> None:
        self.config = config
        self.device = device
        self.window = window or int(config.window_seconds * SAMPLE_RATE_HZ)
        self.phrase_window = min(phrase_window or self.window, self.window)
        positives = [e.samples for e in data.train if e.label == "positive"]
        negatives = [e.samples for e in data.train if e.label != "positive"]
        self.positive_weights, self.negative_weights = (
            torch.tensor([e.weight for e in data.train if (e.label == "positive") == wanted],
                         dtype=torch.float32, device=device)
            for wanted in (True, False)
        )  # fmt: skip
        self.positives = AudioBank(positives, device)
        self.negatives = AudioBank(negatives, device, min_length=self.window)
        background = data.background or negatives
        self.background = AudioBank(background, device, min_length=self.window)
        self.rirs = AudioBank(data.rirs, device, min_length=RIR_SAMPLES) if data.rirs else None
        self.n_negative_windows = max(
            len(self.negatives), round(len(self.positives) * config.negatives_per_positive)
        )
        # Hard negatives made from the phrase itself: reversed, or only a part of it, so the
        # model must hear the whole phrase, not just a short word from a similar voice.
        self.n_hard_windows = round(
            len(self.positives) * config.augment.hard_negatives_per_positive
        )

    @property
    def per_epoch(self) -> int:
        return len(self.positives) + self.n_negative_windows + self.n_hard_windows

    @property
    def balanced_positive_weight(self) -> float:
        """Class weight that balances the classes: negative windows per positive in an epoch."""
        return (self.n_negative_windows + self.n_hard_windows) / len(self.positives)

    def epoch(
        self, gen: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Shuffled (audio (B, W), labels (B,), loss weights (B,)) batches for one epoch."""
        d = self.device
        n_pos, n_neg, n_hard = len(self.positives), self.n_negative_windows, self.n_hard_windows
        neg_ids = torch.cat(
            [
                torch.randperm(len(self.negatives), generator=gen, device=d),
                torch.randint(
                    len(self.negatives), (n_neg - len(self.negatives),), generator=gen, device=d
                ),
            ]
        )
        hard_ids = torch.randint(n_pos, (n_hard,), generator=gen, device=d)
        hard_kinds = torch.where(_uniform(n_hard, gen, d) < 0.5, REVERSED, FRAGMENT)
        ids = torch.cat([torch.arange(n_pos, device=d), neg_ids, hard_ids])
        kinds = torch.cat(
            [torch.full((n_pos,), POSITIVE, device=d), torch.full((n_neg,), NEGATIVE, device=d),
             hard_kinds]
        )  # fmt: skip
        order = torch.randperm(len(ids), generator=gen, device=d)
        for start in range(0, len(order), self.config.batch_size):
            batch = order[start : start + self.config.batch_size]
            labels = (kinds[batch] == POSITIVE).float()
            from_positive = kinds[batch] != NEGATIVE
            weights = torch.where(
                from_positive,
                self.positive_weights[ids[batch].where(from_positive, 0)],
                self.negative_weights[ids[batch].where(~from_positive, 0)],
            )
            yield self._windows(ids[batch], kinds[batch], gen), labels, weights

    def _windows(
        self, ids: torch.Tensor, kinds: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        a, d, b = self.config.augment, self.device, len(ids)
        x = torch.zeros(b, self.window, device=d)
        from_positive = kinds != NEGATIVE
        if from_positive.any():
            p = ids[from_positive]
            stretch = _uniform(len(p), gen, d) < a.speed_probability
            speed = torch.where(stretch, _between(a.speed_min, a.speed_max, len(p), gen, d), 1.0)
            # Fragments keep 25-55 % of the phrase, from its start or its end.
            share = _between(0.25, 0.55, len(p), gen, d)
            from_start = _uniform(len(p), gen, d) < 0.5
            fragment = kinds[from_positive] == FRAGMENT
            lo = torch.where(fragment & ~from_start, 1 - share, 0.0)
            hi = torch.where(fragment & from_start, share, 1.0)
            placed = self.positives.place(p, self.phrase_window, speed, gen, (lo, hi))
            reversed_ = (kinds[from_positive] == REVERSED)[:, None]
            phrases = torch.where(reversed_, placed.flip(1), placed)  # (P, phrase_window)
            x[from_positive] = nn.functional.pad(phrases, (self.window - self.phrase_window, 0))
        if (~from_positive).any():
            n = int((~from_positive).sum())
            across = _uniform(n, gen, d) < a.across_clips_probability
            x[~from_positive] = self.negatives.crops(ids[~from_positive], self.window, gen, across)
        if a.rir_probability > 0:
            rir_ids = (
                torch.randint(len(self.rirs), (b,), generator=gen, device=d) if self.rirs else None
            )
            rir = (
                self.rirs.crops(rir_ids, RIR_SAMPLES, gen)
                if self.rirs is not None and rir_ids is not None
                else synthetic_rirs(b, gen, d)
            )
            x = reverberate(x, rir, _uniform(b, gen, d) < a.rir_probability)
        noise = self.background.crops(
            torch.randint(len(self.background), (b,), generator=gen, device=d), self.window, gen
        )
        snr = _between(a.snr_db_min, a.snr_db_max, b, gen, d)
        x = add_noise(x, noise, snr, (_uniform(b, gen, d) < a.noise_probability).float())
        return widen_voice(x, a, lambda n: _uniform(n, gen, d))
