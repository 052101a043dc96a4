"""Decoding, validation and quality metrics on real recordings."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
import soxr

from tests.conftest import shared
from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.audio.decode import AudioRejected, ClipLimits, decode_upload, encode_clip
from waketrain.audio.quality import measure_quality

LIMITS = ClipLimits(max_bytes=10_000_000, min_seconds=0.3, max_seconds=30.0)


def first_clip(folder: str) -> bytes:
    return sorted(shared(folder).iterdir())[0].read_bytes()


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def speech() -> np.ndarray:
    samples, _ = sf.read(io.BytesIO(first_clip("wake/computer")), dtype="float32")
    return samples


def test_flac_is_decoded_to_16k_mono_float() -> None:
    decoded = decode_upload(first_clip("wake/computer"), LIMITS)
    assert decoded.original_format == "FLAC"
    assert decoded.samples.dtype == np.float32 and decoded.samples.ndim == 1
    assert decoded.duration_seconds > 0.3


def test_44k_stereo_is_downmixed_and_resampled() -> None:
    mono = speech()
    stereo = np.stack([mono, mono], axis=1)
    stereo_44k = soxr.resample(stereo, SAMPLE_RATE_HZ, 44_100)
    decoded = decode_upload(wav_bytes(stereo_44k, 44_100), LIMITS)
    assert (decoded.original_sample_rate, decoded.original_channels) == (44_100, 2)
    assert decoded.duration_seconds == pytest.approx(len(mono) / SAMPLE_RATE_HZ, abs=0.01)
    # The round trip through 44.1 kHz keeps the signal, not just the length.
    n = min(len(mono), len(decoded.samples))
    assert np.corrcoef(mono[:n], decoded.samples[:n])[0, 1] > 0.99


def test_canonical_encoding_is_16k_mono_pcm16_wav() -> None:
    decoded = decode_upload(first_clip("wake/computer"), LIMITS)
    info = sf.info(io.BytesIO(encode_clip(decoded.samples)))
    assert (info.format, info.subtype, info.samplerate, info.channels) == (
        "WAV",
        "PCM_16",
        16_000,
        1,
    )


@pytest.mark.parametrize(
    ("content", "status", "phrase"),
    [
        (b"", 422, "empty"),
        (b"just some text, not audio\n" * 20, 415, "not audio"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", 415, "not audio"),
    ],
    ids=["empty", "text", "header-only"],
)
def test_undecodable_input_is_rejected_with_what_is_accepted(
    content: bytes, status: int, phrase: str
) -> None:
    with pytest.raises(AudioRejected) as caught:
        decode_upload(content, LIMITS)
    assert caught.value.status == status
    assert phrase in str(caught.value)
    if status == 415:
        assert "WAV, FLAC" in str(caught.value)


def test_truncated_wav_is_rejected() -> None:
    whole = wav_bytes(speech(), SAMPLE_RATE_HZ)
    with pytest.raises(AudioRejected, match="truncated"):
        decode_upload(whole[: len(whole) // 2], LIMITS)


@pytest.mark.parametrize(
    ("riff_size", "data_size"),
    [(0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, None), (None, 0xFFFFFFFF), (0, 0)],
)
def test_a_wav_written_to_a_pipe_is_read_to_its_end(
    riff_size: int | None, data_size: int | None
) -> None:
    """Tools writing WAV to a pipe cannot go back to fill in the sizes: they leave 0 or
    0xFFFFFFFF there, and the audio runs to the end of the file."""
    whole = wav_bytes(speech(), SAMPLE_RATE_HZ)
    streamed = bytearray(whole)
    at = streamed.find(b"data")
    if riff_size is not None:
        streamed[4:8] = riff_size.to_bytes(4, "little")
    if data_size is not None:
        streamed[at + 4 : at + 8] = data_size.to_bytes(4, "little")
    decoded = decode_upload(bytes(streamed), LIMITS)
    assert np.array_equal(decoded.samples, decode_upload(whole, LIMITS).samples)


@pytest.mark.parametrize("rate", [4_000, 500_000])
def test_absurd_sample_rates_are_refused_naming_the_accepted_range(rate: int) -> None:
    with pytest.raises(AudioRejected, match="8000 to 384000 Hz"):
        decode_upload(wav_bytes(speech()[: rate // 2], rate), LIMITS)


def test_a_cut_off_flac_is_called_truncated() -> None:
    flac = first_clip("wake/computer")
    for cut in (len(flac) // 2, 200):
        with pytest.raises(AudioRejected, match="FLAC file is truncated"):
            decode_upload(flac[:cut], LIMITS)


def test_samples_that_are_not_numbers_are_rejected() -> None:
    for bad in (np.nan, np.inf):
        samples = np.stack([speech(), speech()], axis=1)  # float stereo, as a damaged header
        samples[0, 0] = bad  # once made the fuzz test's decoder return NaN
        buffer = io.BytesIO()
        sf.write(buffer, samples, SAMPLE_RATE_HZ, format="WAV", subtype="FLOAT")
        with pytest.raises(AudioRejected, match="not numbers"):
            decode_upload(buffer.getvalue(), LIMITS)


def test_length_limits_name_the_limit() -> None:
    long_noise, _ = sf.read(str(shared("noise/speech_commands/white_noise.flac")), dtype="float32")
    too_long = np.concatenate([long_noise, long_noise[:SAMPLE_RATE_HZ]])  # 31 s
    with pytest.raises(AudioRejected, match=r"31\.00 s long; clips may be at most 30\.0 s"):
        decode_upload(wav_bytes(too_long, SAMPLE_RATE_HZ), LIMITS)
    with pytest.raises(AudioRejected, match=r"at least 0\.3 s"):
        decode_upload(wav_bytes(speech()[:3200], SAMPLE_RATE_HZ), LIMITS)


def test_oversized_file_is_refused_before_decoding() -> None:
    with pytest.raises(AudioRejected) as caught:
        decode_upload(first_clip("wake/computer"), ClipLimits(1000, 0.3, 30.0))
    assert caught.value.status == 413 and "limit is 1000 bytes" in str(caught.value)


def test_quality_of_clean_speech_is_high() -> None:
    metrics = measure_quality(speech())
    assert metrics.speech_seconds > 0.2
    assert metrics.snr_db > 15
    assert metrics.score >= 80, metrics.reasons


def test_quality_flags_clipping_silence_and_noise() -> None:
    clipped = measure_quality(np.clip(speech() * 50, -1, 1))
    assert clipped.clipping_ratio > 0.001
    assert any("clipped" in reason for reason in clipped.reasons)

    silent = measure_quality(speech() * 1e-4)
    assert any("near silent" in reason for reason in silent.reasons)
    assert silent.score < 60

    noise, _ = sf.read(str(shared("noise/speech_commands/white_noise.flac")), dtype="float32")
    white = measure_quality(noise[: 3 * SAMPLE_RATE_HZ])
    assert white.speech_seconds < 0.5
    assert white.snr_db < 10
    assert any("noisy" in reason for reason in white.reasons)


@pytest.mark.parametrize(
    ("container", "subtype", "name"),
    [("OGG", "VORBIS", "OGG"), ("OGG", "OPUS", "OGG"), ("MP3", "MPEG_LAYER_III", "MP3")],
)
def test_compressed_formats_are_recognised_by_content(
    container: str, subtype: str, name: str
) -> None:
    source = speech()
    rate = 48_000 if subtype == "OPUS" else 16_000  # Opus runs at 48 kHz
    buffer = io.BytesIO()
    sf.write(buffer, soxr.resample(source, SAMPLE_RATE_HZ, rate), rate, format=container,
             subtype=subtype)  # fmt: skip
    decoded = decode_upload(buffer.getvalue(), LIMITS)
    assert decoded.original_format == name
    assert decoded.duration_seconds == pytest.approx(len(source) / SAMPLE_RATE_HZ, abs=0.1)
