"""espeak-ng through ctypes, from the `espeakng-loader` wheel (library and voices inside).

No system TTS is needed. The library keeps global state, so one process-wide engine
serves every caller under a lock. That state (pitch flutter, echo, resonators, gain control)
carries from one utterance into the next and no call resets it: the same text and voice sound
alike but not sample-identical after other speech. A caller that needs identical audio for
identical input speaks the same sequence from a fresh process, with a seed per utterance.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from waketrain.audio.constants import SAMPLE_RATE_HZ

_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS: audio comes back through the callback
_DONT_EXIT = 0x8000  # espeakINITIALIZE_DONT_EXIT: report errors instead of exit()
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7
_POS_CHARACTER = 1
_CHARS_UTF8, _SSML = 1, 0x10
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

ENGLISH_VOICES = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc")


class SpeechSynthesisFailed(RuntimeError):
    """espeak-ng refused a voice or a text."""


@dataclass(frozen=True)
class Voice:
    """One way of speaking: a language voice, a variant (`f3`, `m1`, ...) and prosody."""

    language: str
    variant: str
    rate_wpm: int  # 80-450
    pitch: int  # 0-100
    pitch_range: int  # 0-100
    word_gap_10ms: int = 0

    @property
    def name(self) -> str:
        return f"{self.language}+{self.variant}"


class Espeak:
    """`speak(text, voice)` -> 16 kHz float32 audio."""

    _lock = threading.Lock()
    _instance: Espeak | None = None

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "Synthetic speech needs the espeakng-loader wheel: pip install 'waketrain[train]'"
            ) from exc
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.data_path = Path(espeakng_loader.get_data_path())
        self._lib.espeak_Initialize.restype = ctypes.c_int
        rate = self._lib.espeak_Initialize(
            _SYNCHRONOUS, 0, str(self.data_path.parent).encode(), _DONT_EXIT
        )
        if rate <= 0:
            raise SpeechSynthesisFailed(f"espeak-ng failed to start (data in {self.data_path})")
        self.native_rate = rate
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # kept referenced while the library holds it
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self._libc = ctypes.CDLL(None)  # breath noise also draws on the C library's rand()
        self._libc.srand.argtypes = [ctypes.c_uint]
        self._lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                                    ctypes.c_int]  # fmt: skip
        self._lib.espeak_TextToPhonemes.restype = ctypes.c_char_p

    @classmethod
    def shared(cls) -> Espeak:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def variants(self) -> list[str]:
        """Voice variants shipped with the data (`f1`, `m3`, `Annie`, ...)."""
        return sorted(p.name for p in (self.data_path / "voices" / "!v").iterdir() if p.is_file())

    def _collect(self, samples: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0  # 0 = go on synthesizing

    def phonemes(self, text: str, language: str = "en-us") -> str:
        """espeak-ng's phoneme spelling of `text` (stress marks dropped)."""
        with self._lock:
            if self._lib.espeak_SetVoiceByName(language.encode()) != 0:
                raise SpeechSynthesisFailed(f"espeak-ng has no voice {language!r}")
            pointer = ctypes.c_char_p(text.encode())
            parts = []
            while pointer.value:
                chunk = self._lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, 0)
                parts.append((chunk or b"").decode())
        return " ".join(parts).replace("'", "").replace(",", "").strip()

    def speak(self, text: str, voice: Voice, ssml: bool = False, seed: int = 0) -> np.ndarray:
        with self._lock:
            # Both random sources the synthesizer draws on (its own and libc's) start from `seed`.
            self._lib.espeak_ng_SetRandSeed(seed)
            self._libc.srand(seed)
            if self._lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
                raise SpeechSynthesisFailed(f"espeak-ng has no voice {voice.name!r}")
            for parameter, value in (
                (_RATE, voice.rate_wpm),
                (_PITCH, voice.pitch),
                (_RANGE, voice.pitch_range),
                (_WORDGAP, voice.word_gap_10ms),
                (_VOLUME, 100),
            ):
                self._lib.espeak_SetParameter(parameter, value, 0)
            self._chunks = []
            data = text.encode() + b"\0"
            flags = _CHARS_UTF8 | (_SSML if ssml else 0)
            status = self._lib.espeak_Synth(
                data, len(data), 0, _POS_CHARACTER, 0, flags, None, None
            )
            self._lib.espeak_Synchronize()
            if status != 0:
                raise SpeechSynthesisFailed(f"espeak-ng could not speak {text!r} (error {status})")
            pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        audio = pcm.astype(np.float32) / 32768.0
        resampled: np.ndarray = soxr.resample(audio, self.native_rate, SAMPLE_RATE_HZ)
        return resampled.astype(np.float32)
