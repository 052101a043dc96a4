"""The board's detector built from plain options (runtime/run_detector.py), without the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import shared
from waketrain.runtime.run_detector import DetectorOptions, listen
from waketrain.training.pipeline import TrainResult

SR = 16_000


@pytest.fixture(scope="module")
def options(oww_job: TrainResult, tmp_path_factory: pytest.TempPathFactory) -> DetectorOptions:
    """Ten seconds of room tone from a file, published on stdout: `waketrain detect`'s defaults."""
    audio = np.concatenate([sf.read(str(p), dtype="float32")[0]
                            for p in sorted(shared("noise/room_tone").glob("*.flac"))])  # fmt: skip
    wav = tmp_path_factory.mktemp("room") / "room.wav"
    sf.write(str(wav), audio[: 10 * SR], SR, subtype="PCM_16")
    return DetectorOptions(
        model=oww_job.export_dir / "wake_model.onnx",
        source=f"file:{wav}",
        mqtt=None,
        tars=False,
        threshold=None,
        wyoming=None,
        capture_dir=None,
        near_miss_fraction=0.6,
        capture_max_mb=50.0,
        board_name=None,
        room_audio_every=0.0,
        room_audio_seconds=30.0,
        push_url=None,
        push_dataset=None,
        push_token_file=None,
        push_token_from_env=None,
        push_every=300.0,
    )


def published(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [line for line in lines if line.get("event") != "ready"]


def test_room_tone_publishes_nothing_and_a_threshold_of_zero_fires_on_it(
    options: DetectorOptions, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--threshold 0` is an override like any other, not 'no override'."""
    listen(options, say=print)
    assert published(capsys) == []
    listen(dataclasses.replace(options, threshold=0.0), say=print)
    detections = published(capsys)
    assert detections and all(d["threshold"] == 0.0 for d in detections)


SPOOL = Path("spool")  # relative: each test runs in its own tmp_path

REFUSED = [
    ({"room_audio_every": 5.0}, "--room-audio-every needs --capture-dir"),
    ({"push_url": "http://service:8000"}, "--push-url needs --capture-dir and --push-dataset"),
    ({"capture_dir": SPOOL, "near_miss_fraction": 1.0}, "--near-miss-fraction"),
    (
        {"capture_dir": SPOOL, "push_url": "http://service:8000", "push_dataset": "d"},
        "No board token",
    ),
    (
        {
            "capture_dir": SPOOL,
            "push_url": "ftp://service",
            "push_dataset": "d",
            "push_token_from_env": "t",
        },
        "must start with http:// or https://",
    ),
    ({"source": "tape"}, "Unknown audio source"),
]


@pytest.mark.parametrize(("change", "message"), REFUSED)
def test_options_that_do_not_fit_together_are_refused_naming_the_option(
    options: DetectorOptions,
    change: dict[str, object],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        listen(dataclasses.replace(options, **change), say=print)
