"""Synthetic clips for one wake phrase: positives, confusable negatives, everyday speech.

Generated once per (phrase, settings, seed) and cached under scratch/synth/, so every job on
the same phrase reuses them; the cache is safe to delete. A set is spoken in a fresh process
with a seed per clip, because espeak-ng carries state from one utterance into the next: so the
same settings give the same audio on any run, whatever the process said before.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.processes import die_with_parent
from waketrain.store.errors import InvalidInput, describe_validation_errors
from waketrain.store.files import atomic_write_json
from waketrain.synth import piper
from waketrain.synth.espeak import ENGLISH_VOICES, Espeak, SpeechSynthesisFailed, Voice
from waketrain.synth.phrases import GENERIC_SPEECH, confusable_phrases

GENERATOR_VERSION = 4  # bump when the same settings would produce different audio
SILENCE_DBFS = -45.0
MAX_POSITIVE_SECONDS = 2.5  # longer would not fit the 2 s head window with any margin
KINDS = ("positive", "confusable", "speech")


class SynthConfig(BaseModel):
    """How much synthetic speech a job adds, and how much it counts against real clips."""

    model_config = ConfigDict(extra="forbid")

    use: str = Field(
        default="auto",
        pattern="^(auto|on|off|only)$",
        description="on: real + synthetic; off: real clips only; auto: on, unless the "
        "negative bank gives an oww_head job bank_speech_hours of real speech to train on; "
        "only: synthetic positives instead of the real training positives (held-out real "
        "positives still evaluate).",
    )
    bank_speech_hours: float = Field(
        default=0.25,
        ge=0,
        description="auto: with this much real speech from the bank to train on, synthetic "
        "speech makes the head separate worse (bench/accuracy.py --voices), so none is made.",
    )
    voices: Literal["espeak", "piper", "both"] = Field(
        default="espeak",
        description="Who speaks: espeak-ng (6 accents x 104 voice variants, formant "
        "synthesis), Piper's en_US-joe-medium (one natural US voice at many tempos), or "
        "both, half each.",
    )
    positives: int = Field(default=300, ge=0, le=5000)
    confusables: int = Field(default=300, ge=0, le=5000)
    speech: int = Field(default=100, ge=0, le=5000)
    weight: float = Field(
        default=0.5, ge=0, le=10, description="Loss weight of a synthetic example; real = 1."
    )


@dataclass
class SyntheticClip:
    kind: str  # positive | confusable | speech
    text: str
    voice: str
    samples: np.ndarray  # 16 kHz float32, silence trimmed

    @property
    def label(self) -> str:
        return "positive" if self.kind == "positive" else "negative"


@dataclass
class SynthReport:
    phrase: str
    generated: dict[str, int]
    dropped: list[dict[str, str]] = field(default_factory=list)
    cached: bool = False
    folder: str = ""

    def summary(self) -> str:
        made = ", ".join(f"{self.generated.get(kind, 0)} {kind}" for kind in KINDS)
        reasons: dict[str, int] = {}
        for item in self.dropped:
            reasons[item["reason"]] = reasons.get(item["reason"], 0) + 1
        dropped = "; ".join(f"{n} {reason}" for reason, n in reasons.items()) or "none"
        source = "from cache" if self.cached else "generated"
        return f"synthetic data for {self.phrase!r} ({source}): {made}. Dropped: {dropped}."


@dataclass
class SyntheticSet:
    clips: list[SyntheticClip]
    report: SynthReport


def _trim(audio: np.ndarray, frame: int = 160) -> np.ndarray:
    """Cut leading and trailing frames quieter than SILENCE_DBFS."""
    n = len(audio) // frame
    if n == 0:
        return audio
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(20 * np.log10(rms) > SILENCE_DBFS)
    if len(loud) == 0:
        return audio[:0]
    return audio[max(0, loud[0] - 2) * frame : (loud[-1] + 3) * frame]


def _random_voice(rng: random.Random, variants: list[str]) -> Voice:
    return Voice(
        language=rng.choice(ENGLISH_VOICES),
        variant=rng.choice(variants),
        rate_wpm=rng.randint(115, 235),
        pitch=rng.randint(20, 85),
        pitch_range=rng.randint(10, 95),
        word_gap_10ms=rng.choice((0, 0, 0, 1, 3)),
    )


def _random_piper_style(rng: random.Random) -> piper.PiperStyle:
    return piper.PiperStyle(
        length_scale=rng.uniform(0.75, 1.35),
        noise_scale=rng.uniform(0.3, 1.0),
        noise_w=rng.uniform(0.3, 1.2),
    )


def _styled(text: str, rng: random.Random) -> tuple[str, bool]:
    """Plain, question, exclamation, or one word emphasised (SSML)."""
    words = text.split()
    style = rng.random()
    if style < 0.2 and words:
        i = rng.randrange(len(words))
        words[i] = f"<emphasis level='strong'>{words[i]}</emphasis>"
        return f"<speak>{' '.join(words)}</speak>", True
    if style < 0.35:
        return f"{text}?", False
    if style < 0.5:
        return f"{text}!", False
    return text, False


def _cache_key(phrase: str, config: SynthConfig, seed: int) -> str:
    spec = {"phrase": phrase.lower().strip(), "seed": seed, "version": GENERATOR_VERSION}
    spec.update(config.model_dump(exclude={"use", "weight", "bank_speech_hours"}))
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _load(folder: Path) -> SyntheticSet:
    manifest = json.loads((folder / "manifest.json").read_text())
    clips = [
        SyntheticClip(
            item["kind"], item["text"], item["voice"],
            sf.read(str(folder / item["file"]), dtype="float32")[0],
        )
        for item in manifest["clips"]
    ]  # fmt: skip
    report = SynthReport(**manifest["report"], cached=True, folder=str(folder))
    return SyntheticSet(clips, report)


def _generate(phrase: str, config: SynthConfig, seed: int) -> SyntheticSet:
    engine = Espeak.shared()
    rng = random.Random(seed)
    variants = engine.variants()
    wanted = phrase.lower().strip()
    phrase_sound = engine.phonemes(wanted)
    dropped: list[dict[str, str]] = []
    confusables = []
    for text in confusable_phrases(wanted):
        if engine.phonemes(text) == phrase_sound:
            dropped.append({"text": text, "reason": "sounds the same as the wake phrase"})
        else:
            confusables.append(text)
    texts = {
        "positive": [wanted] * config.positives,
        "confusable": [confusables[i % len(confusables)] for i in range(config.confusables)]
        if confusables
        else [],
        "speech": [GENERIC_SPEECH[i % len(GENERIC_SPEECH)] for i in range(config.speech)],
    }
    clips: list[SyntheticClip] = []
    for kind in KINDS:
        for text in texts[kind]:
            use_piper = config.voices == "piper" or (config.voices == "both" and rng.random() < 0.5)
            try:
                if use_piper:
                    style = _random_piper_style(rng)
                    name = style.name
                    spoken = rng.choice((text, text, f"{text}?", f"{text}!"))  # no SSML
                    audio = _trim(piper.speak(spoken, style, seed))
                else:
                    voice = _random_voice(rng, variants)
                    name = voice.name
                    spoken, ssml = _styled(text, rng)
                    clip_seed = rng.randrange(2**31)
                    audio = _trim(engine.speak(spoken, voice, ssml=ssml, seed=clip_seed))
                audio /= max(1.0, float(np.abs(audio).max(initial=0.0)) / 0.95)  # no clipping
            except SpeechSynthesisFailed as exc:
                dropped.append({"text": text, "voice": name, "reason": str(exc)})
                continue
            if len(audio) < SAMPLE_RATE_HZ // 10:
                dropped.append({"text": text, "voice": name, "reason": "no audible speech"})
            elif kind == "positive" and len(audio) > MAX_POSITIVE_SECONDS * SAMPLE_RATE_HZ:
                reason = f"longer than {MAX_POSITIVE_SECONDS:g} s"
                dropped.append({"text": text, "voice": name, "reason": reason})
            else:
                clips.append(SyntheticClip(kind, text, name, audio))
    generated = {kind: sum(c.kind == kind for c in clips) for kind in KINDS}
    return SyntheticSet(clips, SynthReport(phrase=wanted, generated=generated, dropped=dropped))


def _generate_into(staging: Path, phrase: str, config: SynthConfig, seed: int) -> None:
    """Speak the set and write its WAV files and manifest.json into `staging`."""
    result = _generate(phrase, config, seed)
    staging.mkdir(parents=True)
    entries = []
    for i, clip in enumerate(result.clips):
        name = f"{clip.kind}-{i:05d}.wav"
        sf.write(str(staging / name), clip.samples, SAMPLE_RATE_HZ, subtype="PCM_16")
        entries.append({"file": name, "kind": clip.kind, "text": clip.text, "voice": clip.voice})
    report = result.report
    atomic_write_json(
        staging / "manifest.json",
        {"clips": entries, "report": {"phrase": report.phrase, "generated": report.generated,
                                      "dropped": report.dropped}},
    )  # fmt: skip


def synth_config(overrides: dict[str, object]) -> SynthConfig:
    """Settings from `--set key=value` overrides; InvalidInput names each one that is wrong."""
    try:
        return SynthConfig.model_validate(overrides)
    except ValidationError as exc:
        problems = describe_validation_errors(exc.errors(), "synth")
        raise InvalidInput(f"Invalid synthesis settings: {problems}.") from None


def synthesize(phrase: str, config: SynthConfig, scratch: Path, seed: int = 0) -> SyntheticSet:
    """The synthetic set for `phrase`, from scratch/synth/ when it was made before."""
    folder = scratch / "synth" / _cache_key(phrase, config, seed)
    if (folder / "manifest.json").exists():
        return _load(folder)
    # Build beside the final folder and rename, so a crash never leaves a half cache.
    staging = folder.with_name(f".{folder.name}-{uuid.uuid4().hex[:8]}")
    try:
        # Dies with this process: a worker killed mid-job leaves no speaker behind.
        with ProcessPoolExecutor(
            max_workers=1,
            mp_context=get_context("spawn"),
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        ) as fresh:
            fresh.submit(_generate_into, staging, phrase, config, seed).result()
        staging.rename(folder)
    except OSError:
        if not (folder / "manifest.json").exists():
            raise
        # another job made it first; theirs is the same
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    made = _load(folder)  # the clips as stored, so the first job and later ones see the same
    made.report.cached = False
    return made


def copy_set(result: SyntheticSet, folder: Path) -> None:
    """The set's WAV files and manifest.json, copied to `folder` for listening."""
    shutil.copytree(result.report.folder, folder, dirs_exist_ok=True)
