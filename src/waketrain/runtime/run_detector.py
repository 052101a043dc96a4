"""The board's detector as one call: built from plain options, run until its audio ends.

`waketrain detect` parses its options into `DetectorOptions` and calls `listen`; everything
else (the model, the audio source, the publisher, the capture spool and its background push,
or the Wyoming server instead) is put together here. Errors are ValueError for options that
do not fit together and OSError for files, devices and sockets; the messages name the
command's options, since that is where an operator fixes them.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from waketrain.runtime.capture import (
    MAX_ROOM_SECONDS,
    ROOM_GUARD_SECONDS,
    CaptureRecorder,
    CaptureSettings,
)
from waketrain.runtime.capture_push import BackgroundPush
from waketrain.runtime.detector import Detector
from waketrain.runtime.publish import Publisher, open_publisher
from waketrain.runtime.sources import open_source

BOARD_TOKEN_ENV = "WAKETRAIN_BOARD_TOKEN"


@dataclass(frozen=True, kw_only=True)
class DetectorOptions:
    """What `waketrain detect` was asked for; each field is the option of the same name."""

    model: Path
    source: str
    mqtt: str | None
    tars: bool
    threshold: float | None  # None: the model card's
    wyoming: str | None  # a Wyoming server's URI: serve there instead of reading `source`
    capture_dir: Path | None  # None: no captures
    near_miss_fraction: float
    capture_max_mb: float
    board_name: str | None  # None: the hostname
    room_audio_every: float  # minutes; 0: none
    room_audio_seconds: float
    push_url: str | None  # None: captures stay in the spool (or `capture push` sends them)
    push_dataset: str | None
    push_token_file: Path | None
    push_token_from_env: str | None  # BOARD_TOKEN_ENV's value, used when there is no file
    push_every: float  # seconds


def listen(options: DetectorOptions, say: Callable[[str], None]) -> None:
    """Detect the wake phrase and publish each detection until the audio source ends.

    `say` gets what an operator should see: model swaps, captures, push results.
    """
    if options.wyoming:
        if options.capture_dir:
            say("captures are not saved in Wyoming mode (--capture-dir ignored)")
        from waketrain.runtime.wyoming_server import run_wyoming

        run_wyoming(options.wyoming, options.model, options.threshold)
        return
    detector = Detector(options.model, options.threshold)
    recorder = None
    if options.capture_dir:
        recorder = _capture_recorder(options, options.capture_dir, say)
    elif options.room_audio_every:
        raise ValueError("--room-audio-every needs --capture-dir (the spool it is sent from).")
    pusher = None
    if options.push_url:
        if not (options.capture_dir and options.push_dataset):
            raise ValueError("--push-url needs --capture-dir and --push-dataset.")
        if options.push_every <= 0:
            raise ValueError(f"--push-every must be positive (got {options.push_every}).")
        token = board_token(options.push_token_file, options.push_token_from_env)
        url = service_url(options.push_url)
        pusher = BackgroundPush(
            options.capture_dir, url, options.push_dataset, token, options.push_every, say
        )
    chunks = open_source(options.source)
    publisher = open_publisher(options.mqtt, options.tars)
    if pusher is not None:
        pusher.start()
    try:
        publish_detections(detector, chunks, publisher, on_reload=say, recorder=recorder)
    finally:
        publisher.close()
        if pusher is not None:
            pusher.stop()


def _capture_recorder(
    options: DetectorOptions, spool_dir: Path, say: Callable[[str], None]
) -> CaptureRecorder:
    if not 0 < options.near_miss_fraction < 1:
        raise ValueError(
            f"--near-miss-fraction must be in (0, 1) (got {options.near_miss_fraction})."
        )
    if options.capture_max_mb <= 0:
        raise ValueError(f"--capture-max-mb must be positive (got {options.capture_max_mb}).")
    every, seconds = options.room_audio_every * 60, options.room_audio_seconds
    if not 0 < seconds <= MAX_ROOM_SECONDS:
        raise ValueError(
            f"--room-audio-seconds must be in (0, {MAX_ROOM_SECONDS:g}] (got {seconds:g})."
        )
    if every and not every > seconds + ROOM_GUARD_SECONDS:
        raise ValueError(
            f"--room-audio-every ({every / 60:g} min) must leave time between stretches of "
            f"--room-audio-seconds ({seconds:g} s), or be 0 for none."
        )
    settings = CaptureSettings(
        spool_dir=spool_dir,
        board=options.board_name or socket.gethostname(),
        near_miss_fraction=options.near_miss_fraction,
        max_spool_bytes=round(options.capture_max_mb * 1_000_000),
        room_every_seconds=every,
        room_seconds=seconds,
    )
    return CaptureRecorder(settings, say)


def board_token(token_file: Path | None, from_env: str | None) -> str:
    """From a file or the environment: never from argv, which `ps` and logs show."""
    token = token_file.read_text().strip() if token_file else (from_env or "")
    if not token:
        raise ValueError(f"No board token: give --token-file or set {BOARD_TOKEN_ENV}.")
    return token


def service_url(url: str) -> str:
    """The service's URL as given, once it is known to be HTTP(S)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"Service URL {url!r} must start with http:// or https://.")
    return url


def publish_detections(
    detector: Detector,
    chunks: Iterable[np.ndarray],
    publisher: Publisher,
    on_reload: Callable[[str], None] | None = None,
    recorder: CaptureRecorder | None = None,
) -> int:
    """Stream until the source ends; returns how many detections were published.

    With a `recorder`, every chunk and its hop scores go to it too (detections and near
    misses saved for review); what it still waits for is written when the source ends.
    """
    publisher.ready(detector.model.card.model_id, detector.model.card.phrase)
    published = 0
    for chunk in chunks:
        reloaded = detector.reload_if_changed()
        if detector.reload_error and on_reload is not None:
            on_reload(f"could not switch models: {detector.reload_error}")
            detector.reload_error = None
        if reloaded:
            model_id = detector.model.card.model_id
            publisher.ready(model_id, detector.model.card.phrase)
            if on_reload is not None:
                on_reload(f"now using {model_id}")
        for detection in detector.process(chunk):
            publisher.detection(detection)
            published += 1
        if recorder is not None and detector.last_hops is not None:
            recorder.feed(chunk, detector.last_hops)
    if recorder is not None:
        recorder.close()
    return published
