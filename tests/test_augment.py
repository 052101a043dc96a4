"""Batched augmentation ops: what goes into a training window is what was asked for."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import torch

from tests.conftest import shared
from waketrain.training.augment import (
    AudioBank,
    TrainingWindows,
    add_noise,
    colour,
    overdrive,
    reverberate,
    set_level,
    shift_voice,
    spec_augment,
    synthetic_rirs,
)
from waketrain.training.config import AugmentConfig, TrainConfig
from waketrain.training.data import Example, PreparedData

CPU = torch.device("cpu")


def ramp_bank() -> AudioBank:
    # Distinct, recognisable samples: clip k holds values k + 0.001 * i.
    return AudioBank([np.arange(1, 801, dtype=np.float32) * 1e-3 + k for k in range(3)], CPU)


def test_place_puts_the_whole_clip_inside_the_window_unchanged() -> None:
    gen = torch.Generator().manual_seed(0)
    x = ramp_bank().place(torch.tensor([0, 1, 2]), 2000, torch.ones(3), gen)
    for k in range(3):
        inside = x[k][x[k] != 0]
        assert len(inside) == 800
        assert torch.allclose(inside, torch.arange(1, 801) * 1e-3 + k)


def test_speed_changes_the_length_and_parts_select_a_fragment() -> None:
    gen = torch.Generator().manual_seed(0)
    bank = ramp_bank()
    faster = bank.place(torch.tensor([1]), 2000, torch.tensor([1.25]), gen)
    assert abs(int((faster != 0).sum()) - 640) <= 2
    part = (torch.tensor([0.0, 0.5]), torch.tensor([0.5, 1.0]))
    halves = bank.place(torch.tensor([1, 1]), 2000, torch.ones(2), gen, part)
    first, second = halves[0][halves[0] != 0], halves[1][halves[1] != 0]
    assert len(first) == len(second) == 400
    assert first.max() < 1.401 and second.min() > 1.4


def test_noise_is_mixed_at_the_requested_snr() -> None:
    gen = torch.Generator().manual_seed(1)
    signal = torch.sin(torch.linspace(0, 400, 16000)).repeat(4, 1) * 0.3
    noise = torch.randn(4, 16000, generator=gen) * 0.01
    snr = torch.tensor([0.0, 10.0, 20.0, 30.0])
    mixed = add_noise(signal, noise, snr, torch.ones(4))
    added = mixed - signal
    measured = 10 * torch.log10(signal.pow(2).mean(1) / added.pow(2).mean(1))
    assert torch.allclose(measured, snr, atol=0.01)
    untouched = add_noise(signal, noise, snr, torch.zeros(4))
    assert torch.equal(untouched, signal)


def test_reverberation_keeps_the_level_and_only_where_asked() -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 16000, generator=gen) * 0.1
    wet = reverberate(x, synthetic_rirs(2, gen, CPU), torch.tensor([True, False]))
    assert torch.isclose(wet[0].pow(2).mean(), x[0].pow(2).mean(), rtol=1e-3)
    assert not torch.allclose(wet[0], x[0]) and torch.equal(wet[1], x[1])


def real_phrase() -> torch.Tensor:
    path = sorted(shared("wake/computer").rglob("*.flac"))[0]
    audio, rate = sf.read(str(path), dtype="float32")
    assert rate == 16000
    return torch.from_numpy(audio).repeat(3, 1)


def band_power(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    spectrum = torch.fft.rfft(x).abs() ** 2
    freqs = torch.fft.rfftfreq(x.shape[1], 1 / 16000)
    return spectrum[:, (freqs >= low) & (freqs < high)].sum(dim=1)


def test_colour_band_limits_and_tilts_a_real_phrase_only_where_asked() -> None:
    x = real_phrase()
    flat = torch.zeros(3, 6)
    tilted = torch.zeros(3, 6)
    tilted[1] = torch.tensor([-12.0, -12.0, 0.0, 0.0, 12.0, 12.0])
    low_cut = torch.tensor([40.0, 40.0, 1000.0])
    high_cut = torch.tensor([9000.0, 9000.0, 2500.0])
    out = colour(x, tilted, low_cut, high_cut, torch.tensor([False, True, True]))
    assert torch.equal(out[0], x[0])
    # Row 1: highs lifted, lows cut; row 2: a telephone-like band, little left outside it.
    assert band_power(out[1:2], 4000, 8000) > 4 * band_power(x[1:2], 4000, 8000)
    assert band_power(out[1:2], 100, 300) < band_power(x[1:2], 100, 300) / 4
    assert band_power(out[2:3], 5000, 8000) < band_power(x[2:3], 5000, 8000) / 100
    assert band_power(out[2:3], 50, 300) < band_power(x[2:3], 50, 300) / 100
    same = colour(x, flat, torch.full((3,), 1.0), torch.full((3,), 1e6), torch.ones(3, dtype=bool))
    assert torch.allclose(same, x, atol=1e-4)


def test_set_level_reaches_the_requested_rms() -> None:
    x = real_phrase()
    levels = torch.tensor([-50.0, -30.0, -10.0])
    out = set_level(x, levels, torch.tensor([True, True, False]))
    rms_db = 10 * torch.log10(out.pow(2).mean(dim=1))
    assert torch.allclose(rms_db[:2], levels[:2], atol=0.01)
    assert torch.equal(out[2], x[2])


def test_overdrive_clips_hard_or_saturates_soft_at_full_scale() -> None:
    x = real_phrase()
    drive = torch.tensor([12.0, 12.0, 12.0])
    soft = torch.tensor([False, True, False])
    out = overdrive(x, drive, soft, torch.tensor([True, True, False]))
    clipped = (out[0].abs() >= 1.0).float().mean()
    assert 0.005 < clipped < 0.5  # the loud part is flattened at full scale
    assert out[1].abs().max() < 1.0 and out[1].abs().max() > 0.99  # tanh: near, never at
    assert (out[1].abs() >= 0.99).float().mean() < clipped
    assert torch.equal(out[2], x[2])


def pitch_hz(x: np.ndarray) -> float:
    """The fundamental of the loudest 40 ms, by autocorrelation (60-400 Hz)."""
    loudest = int(np.argmax(np.convolve(x**2, np.ones(640), "same")))
    part = x[max(0, loudest - 320) : loudest + 320]
    corr = np.correlate(part, part, "full")[len(part) - 1 :]
    low, high = 16000 // 400, 16000 // 60
    return 16000 / (low + int(np.argmax(corr[low:high])))


def test_shift_voice_moves_pitch_keeps_length_and_level_of_a_real_phrase() -> None:
    x = real_phrase()[0].numpy()
    for semitones in (-4.0, -2.0, 2.0, 4.0):
        y = shift_voice(x, semitones)
        assert len(y) == len(x)
        assert np.isclose(np.mean(y**2), np.mean(x**2), rtol=1e-3)
        ratio = pitch_hz(y) / pitch_hz(x)
        assert abs(np.log2(ratio) * 12 - semitones) < 0.5, (semitones, ratio)
    assert np.allclose(shift_voice(x, 0.0), x, atol=0.02)
    assert np.array_equal(shift_voice(x[:100], 3.0), x[:100])


def test_spec_augment_masks_stripes() -> None:
    gen = torch.Generator().manual_seed(3)
    features = torch.ones(8, 32, 97)
    config = AugmentConfig(spec_augment_probability=1.0, time_masks=1, freq_masks=1,
                           time_mask_frames=10, freq_mask_bands=5)  # fmt: skip
    masked = spec_augment(features, config, gen)
    zeros = (masked == 0).float().mean(dim=(1, 2))
    assert torch.all(zeros <= (10 * 32 + 5 * 97) / (32 * 97))
    assert zeros.sum() > 0
    none = spec_augment(features, AugmentConfig(spec_augment_probability=0.0), gen)
    assert torch.equal(none, features)


def test_windows_carry_the_loss_weight_of_the_clip_they_came_from() -> None:
    rng = np.random.default_rng(0)

    def example(i: int, label: str, weight: float) -> Example:
        samples = (rng.standard_normal(12_000) * 0.1).astype(np.float32)
        return Example(f"c{i}", label, None, samples, weight)

    train = [example(i, "positive", 1.0) for i in range(4)]
    train += [example(4 + i, "positive", 0.25) for i in range(4)]  # synthetic
    train += [example(8 + i, "negative", 1.0 if i % 2 else 0.5) for i in range(6)]
    data = PreparedData(phrase="computer", train=train, val=[], background=[], rirs=[])
    config = TrainConfig(batch_size=64)
    windows = TrainingWindows(data, config, CPU)
    batches = list(windows.epoch(torch.Generator().manual_seed(0)))
    weights = torch.cat([w for _, _, w in batches])
    labels = torch.cat([y for _, y, _ in batches])
    assert len(weights) == windows.per_epoch
    assert sorted(weights[labels > 0.5].tolist()) == [0.25] * 4 + [1.0] * 4
    assert set(weights[labels < 0.5].tolist()) <= {0.25, 0.5, 1.0}
    assert (weights[labels < 0.5] == 0.5).any()
