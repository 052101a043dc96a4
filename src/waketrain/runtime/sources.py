"""Where the detector's audio comes from: 16 kHz mono, as float32 chunks of 80 ms.

`file:PATH` (WAV, or anything soundfile reads when it is installed), `stdin` (raw PCM16),
`socket:PATH` (a Unix socket streaming raw PCM16, like TARS's audio fan-out) and
`alsa[:DEVICE]` (an `arecord` pipe; no Python audio library needed on the board).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from waketrain.runtime.speech_embedding import CHUNK_SAMPLES, PCM16_SCALE

SAMPLE_RATE_HZ = 16_000
TARS_FANOUT_SOCKET = "/tmp/tars/audio-fanout.sock"


class SourceError(ValueError):
    """The audio source cannot be opened or is not 16 kHz mono."""


def open_source(spec: str) -> Iterator[np.ndarray]:
    kind, _, arg = spec.partition(":")
    if kind == "file" and arg:
        return file_chunks(Path(arg))
    if kind == "stdin" and not arg:
        return pcm16_chunks(sys.stdin.buffer)
    if kind == "socket":
        return socket_chunks(arg or TARS_FANOUT_SOCKET)
    if kind == "alsa":
        return arecord_chunks(arg or "default")
    raise SourceError(
        f"Unknown audio source {spec!r}; use file:PATH, stdin, socket[:PATH] or alsa[:DEVICE]."
    )


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Little-endian PCM16 bytes (a trailing odd byte ignored) -> float32 in [-1, 1)."""
    return np.frombuffer(data[: len(data) // 2 * 2], "<i2").astype(np.float32) / PCM16_SCALE


def pcm16_chunks(stream: IO[bytes]) -> Iterator[np.ndarray]:
    """Raw little-endian PCM16 at 16 kHz, read until the stream ends."""
    need = CHUNK_SAMPLES * 2
    pending = b""
    while True:
        data = stream.read(need - len(pending))
        if not data:
            break
        pending += data
        if len(pending) == need:
            yield pcm16_to_float(pending)
            pending = b""
    if len(pending) >= 2:
        yield pcm16_to_float(pending)


def file_chunks(path: Path) -> Iterator[np.ndarray]:
    audio = _read_file(path)
    for start in range(0, len(audio), CHUNK_SAMPLES):
        yield audio[start : start + CHUNK_SAMPLES]


def _read_file(path: Path) -> np.ndarray:
    try:
        import soundfile as sf
    except ImportError:  # the board's minimal install: WAV through the standard library
        with wave.open(str(path), "rb") as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (SAMPLE_RATE_HZ, 1, 2):
                raise SourceError(f"{path} must be 16 kHz mono PCM16 WAV") from None
            return pcm16_to_float(w.readframes(w.getnframes()))
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE_HZ:
        raise SourceError(f"{path} is {rate} Hz; the detector takes 16 kHz audio")
    mono: np.ndarray = audio.mean(axis=1)
    return mono


def socket_chunks(path: str) -> Iterator[np.ndarray]:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError as exc:
        raise SourceError(f"Cannot connect to the audio socket {path}: {exc}") from exc
    with conn, conn.makefile("rb") as stream:
        yield from pcm16_chunks(stream)


def arecord_chunks(device: str) -> Iterator[np.ndarray]:
    command = [
        "arecord",
        "-q",
        "-D",
        device,
        "-f",
        "S16_LE",
        "-r",
        str(SAMPLE_RATE_HZ),
        "-c",
        "1",
        "-t",
        "raw",
    ]
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE)
    except FileNotFoundError as exc:
        raise SourceError("alsa needs `arecord` (Debian's alsa-utils)") from exc
    assert process.stdout is not None
    try:
        yield from pcm16_chunks(process.stdout)
    finally:
        process.terminate()
