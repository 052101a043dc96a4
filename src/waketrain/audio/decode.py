"""Decode an uploaded file by its content, validate it and bring it to 16 kHz mono."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from waketrain.audio.constants import CLIP_SUBTYPE, SAMPLE_RATE_HZ

ACCEPTED_FORMATS = "WAV, FLAC, OGG (Vorbis/Opus) or MP3"
UNKNOWN_LENGTH_FRAMES = 2**63 - 1  # libsndfile's SF_COUNT_MAX: the header did not say
# Below telephone audio nothing of a voice is left; above 384 kHz is no microphone's rate.
MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ = 8_000, 384_000
STREAMED_SIZES = (0, 0xFFFFFFFF)  # what a WAV written to a pipe says its sizes are


class AudioRejected(ValueError):
    """An upload that cannot become a clip; the message says why and what is accepted."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ClipLimits:
    max_bytes: int
    min_seconds: float
    max_seconds: float


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # (n,) float32 in [-1, 1] at SAMPLE_RATE_HZ
    original_sample_rate: int
    original_channels: int
    original_format: str

    @property
    def duration_seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE_HZ


def decode_upload(data: bytes, limits: ClipLimits) -> DecodedAudio:
    """Decode `data` (any format libsndfile reads, sniffed from the bytes), downmix, resample."""
    if len(data) == 0:
        raise AudioRejected(f"The file is empty. Upload a recording in {ACCEPTED_FORMATS}.")
    if len(data) > limits.max_bytes:
        raise AudioRejected(
            f"The file is {len(data)} bytes; the limit is {limits.max_bytes} bytes.", status=413
        )
    data = _with_real_sizes(data)
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            if "should be" in f.extra_info and f.format in ("WAV", "WAVEX", "RF64", "W64"):
                # libsndfile reads what is there; a header promising more means a cut-off upload.
                raise AudioRejected(
                    "The WAV file is truncated: its header declares more audio than it holds. "
                    "Upload the complete recording."
                )
            fmt, channels, rate = f.format, f.channels, f.samplerate
            if not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
                raise AudioRejected(
                    f"The file says its sample rate is {rate} Hz; accepted are "
                    f"{MIN_SAMPLE_RATE_HZ} to {MAX_SAMPLE_RATE_HZ} Hz (16 kHz or more is best)."
                )
            # The header's length can be a lie or "unknown": allocate and decode no more than
            # the longest accepted clip plus one frame, whatever it declares.
            declared_frames = f.frames
            longest_frames = int(limits.max_seconds * rate) + 1
            frames = min(declared_frames, longest_frames)
            audio = f.read(frames, dtype="float32", always_2d=True)  # (n, channels)
    except AudioRejected:
        raise
    except (sf.LibsndfileError, RuntimeError, EOFError) as exc:
        reason = getattr(exc, "error_string", None) or str(exc)
        if data.startswith(b"fLaC"):  # a FLAC stream that stops early: cut off, not foreign
            raise AudioRejected(
                f"The FLAC file is truncated or damaged ({reason}). Upload the complete recording."
            ) from exc
        raise AudioRejected(
            f"The file is not audio that can be decoded ({reason}). "
            f"Accepted: {ACCEPTED_FORMATS}, recognised by content, not by file name.",
            status=415,
        ) from exc
    if audio.shape[0] == 0:
        raise AudioRejected(f"The file holds no audio samples. Accepted: {ACCEPTED_FORMATS}.")
    if not np.isfinite(audio).all():  # float formats can carry NaN/inf; a damaged header too
        raise AudioRejected(
            "The file holds samples that are not numbers (NaN or infinity): it is damaged. "
            f"Upload the recording again. Accepted: {ACCEPTED_FORMATS}."
        )
    mono = audio.mean(axis=1) if channels > 1 else audio[:, 0]
    duration = len(mono) / rate
    if duration < limits.min_seconds:
        raise AudioRejected(
            f"The clip is {duration:.2f} s long; clips must be at least {limits.min_seconds} s."
        )
    if duration > limits.max_seconds + 1e-6:
        length = (
            f"{declared_frames / rate:.2f} s long"
            if declared_frames != UNKNOWN_LENGTH_FRAMES
            else f"longer than {limits.max_seconds} s"
        )
        raise AudioRejected(
            f"The clip is {length}; clips may be at most {limits.max_seconds} s. "
            "Split longer recordings first."
        )
    if rate != SAMPLE_RATE_HZ:
        mono = soxr.resample(mono, rate, SAMPLE_RATE_HZ, quality="HQ")
    samples = np.clip(mono, -1.0, 1.0).astype(np.float32)
    return DecodedAudio(samples, rate, channels, fmt)


def _with_real_sizes(data: bytes) -> bytes:
    """A RIFF WAV whose writer could not go back to fill in its sizes (it wrote to a pipe)
    holds audio to the end of the file, whatever the placeholder says: write the sizes in."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return data
    at = data.find(b"data", 12)
    if at < 0 or len(data) < at + 8:
        return data
    riff_size = int.from_bytes(data[4:8], "little")
    data_size = int.from_bytes(data[at + 4 : at + 8], "little")
    if riff_size not in STREAMED_SIZES and data_size not in STREAMED_SIZES:
        return data
    fixed = bytearray(data)
    fixed[4:8] = (len(data) - 8).to_bytes(4, "little")
    fixed[at + 4 : at + 8] = (len(data) - at - 8).to_bytes(4, "little")
    return bytes(fixed)


def encode_clip(samples: np.ndarray) -> bytes:
    """The canonical clip encoding: 16 kHz mono PCM16 WAV."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE_HZ, format="WAV", subtype=CLIP_SUBTYPE)
    return buffer.getvalue()


def read_clip(path: str) -> np.ndarray:
    """Read a canonical clip back as float32 samples, (n,)."""
    samples, rate = sf.read(path, dtype="float32", always_2d=False)
    if rate != SAMPLE_RATE_HZ:
        raise ValueError(f"{path} is {rate} Hz, not a canonical {SAMPLE_RATE_HZ} Hz clip")
    return np.asarray(samples, dtype=np.float32)


STREAM_BLOCK_SECONDS = 30.0


def stream_file(path: str, block_seconds: float = STREAM_BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """A file of any length as 16 kHz mono float32 blocks, never decoded whole into memory.

    Raises AudioRejected when libsndfile cannot read it or it holds non-finite samples.
    """
    try:
        with sf.SoundFile(path) as f:
            rate, channels = f.samplerate, f.channels
            resampler = (
                soxr.ResampleStream(rate, SAMPLE_RATE_HZ, 1, dtype="float32", quality="HQ")
                if rate != SAMPLE_RATE_HZ
                else None
            )
            block_frames = max(1, int(block_seconds * rate))
            while True:
                block = f.read(block_frames, dtype="float32", always_2d=True)
                last = len(block) < block_frames
                if not np.isfinite(block).all():
                    raise AudioRejected(f"{path} holds samples that are not numbers: damaged.")
                mono = block.mean(axis=1) if channels > 1 else block[:, 0]
                if resampler is not None:
                    mono = resampler.resample_chunk(np.ascontiguousarray(mono), last=last)
                if len(mono):
                    yield np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)
                if last:
                    return
    except (sf.LibsndfileError, RuntimeError, EOFError) as exc:
        reason = getattr(exc, "error_string", None) or str(exc)
        raise AudioRejected(
            f"{path} is not audio that can be decoded ({reason}). Accepted: {ACCEPTED_FORMATS}.",
            status=415,
        ) from exc
