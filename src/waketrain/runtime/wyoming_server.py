"""A Wyoming wake-word server, so Home Assistant or Rhasspy can use a trained model.

Answers `describe` with the model and its phrase; for each audio stream (audio-start,
audio-chunk..., audio-stop) it runs a fresh detector and sends `detection` when the phrase is
heard, or `not-detected` at the end of a stream without one.
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, WakeModel, WakeProgram
from wyoming.server import AsyncEventHandler, AsyncServer
from wyoming.wake import Detection, NotDetected

from waketrain import __version__
from waketrain.runtime.detector import Detector
from waketrain.runtime.sources import pcm16_to_float

ATTRIBUTION = Attribution(name="waketrain", url="")  # trained on this site: no homepage


def describe(detector: Detector) -> Info:
    card = detector.model.card
    model = WakeModel(
        name=card.model_id,
        attribution=ATTRIBUTION,
        installed=True,
        description=f"Trained by waketrain: {card.phrase!r}",
        version=card.created or None,
        languages=[],
        phrase=card.phrase,
    )
    program = WakeProgram(
        name="waketrain-detect",
        attribution=ATTRIBUTION,
        installed=True,
        description="waketrain's streaming wake word detector",
        version=__version__,
        models=[model],
    )
    return Info(wake=[program])


class WakeHandler(AsyncEventHandler):
    def __init__(self, model_path: Path, threshold: float | None, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self._model_path = model_path
        self._threshold = threshold
        self._converter = AudioChunkConverter(rate=16_000, width=2, channels=1)
        self._detector: Detector | None = None
        self._detected = False

    def _fresh_detector(self) -> Detector:
        # Each stream starts from silence, with whatever model the path points at now.
        return Detector(self._model_path, self._threshold)

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(describe(self._detector or self._fresh_detector()).event())
        elif AudioStart.is_type(event.type):
            self._detector, self._detected = self._fresh_detector(), False
        elif AudioChunk.is_type(event.type):
            if self._detector is None:  # a client that skipped audio-start
                self._detector, self._detected = self._fresh_detector(), False
            chunk = self._converter.convert(AudioChunk.from_event(event))
            audio = pcm16_to_float(chunk.audio)
            for detection in self._detector.process(audio):
                self._detected = True
                name = detection.model_id
                await self.write_event(Detection(name=name, timestamp=chunk.timestamp).event())
        elif AudioStop.is_type(event.type):
            if not self._detected:
                await self.write_event(NotDetected().event())
            self._detector = None
        return True


async def serve(uri: str, model_path: Path, threshold: float | None) -> None:
    Detector(model_path, threshold)  # fail now, not at the first client, if the model is bad
    server = AsyncServer.from_uri(uri)
    await server.run(partial(WakeHandler, model_path, threshold))


def run_wyoming(uri: str, model_path: Path, threshold: float | None) -> None:
    asyncio.run(serve(uri, model_path, threshold))
