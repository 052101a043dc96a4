"""`waketrain detect` with a real trained head, real recordings and a real Mosquitto broker."""

from __future__ import annotations

import ast
import asyncio
import graphlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest
import soundfile as sf
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from wyoming.wake import Detection, NotDetected

from tests.conftest import free_port, running, service_env, shared
from waketrain.runtime.detector import Detector
from waketrain.runtime.loader import load_export
from waketrain.runtime.publish import HEALTH_TOPIC
from waketrain.runtime.streaming import Trigger
from waketrain.training.pipeline import TrainResult

SR = 16_000
HELD_OUT = range(300, 330)  # "computer" clips the job never saw (it trains on the first 60)


@dataclass
class Broker:
    port: int
    messages: list[tuple[str, dict[str, object], bool]] = field(default_factory=list)

    def on_topic(self, topic: str) -> list[dict[str, object]]:
        return [payload for t, payload, _ in self.messages if t == topic]

    def wait_for_health(self, event: str, model_id: str | None = None) -> None:
        """Until the subscriber has the detector's health `event` (for `model_id`, if given).

        Mosquitto forwards one client's messages in order, so once "stopped" is here,
        every detection published before it is here too.
        """
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for health in self.on_topic(HEALTH_TOPIC):
                if health["event"] == event and model_id in (None, health.get("model_id")):
                    return
            time.sleep(0.05)
        raise AssertionError(f"no {event!r} health message for {model_id}: {self.messages}")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """Mosquitto on a free loopback port, and a subscriber that records everything."""
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    process = subprocess.Popen(["mosquitto", "-c", str(config)], stderr=subprocess.DEVNULL)
    broker = Broker(port)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    subscribed = threading.Event()
    client.on_connect = lambda c, *_: c.subscribe("#", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, m: broker.messages.append(
        (m.topic, json.loads(m.payload), m.retain)
    )
    for _ in range(50):
        try:
            client.connect("127.0.0.1", port)
            break
        except OSError:
            time.sleep(0.1)
    client.loop_start()
    assert subscribed.wait(10), "could not subscribe to the test broker"
    yield broker
    client.loop_stop()
    client.disconnect()
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def export(oww_job: TrainResult) -> Path:
    return oww_job.export_dir


def read(path: Path) -> np.ndarray:
    return sf.read(str(path), dtype="float32")[0]


def noise(seconds: float) -> np.ndarray:
    audio = np.concatenate([read(p) for p in sorted(shared("noise/room_tone").glob("*.flac"))])
    return audio[: int(seconds * SR)]


def fires(export: Path, audio: np.ndarray) -> int:
    """How often training's evaluation path says the detector fires on `audio`."""
    model = load_export(export)
    return len(
        Trigger(model.threshold, model.params.refractory_hops).update(model.score_audio(audio))
    )


@pytest.fixture(scope="module")
def phrase_stream(export: Path) -> np.ndarray:
    """Room tone, a held-out "computer", room tone: a clip on which evaluation fires once."""
    clips = sorted(shared("wake/computer").glob("*.flac"))
    for i in HELD_OUT:
        audio = np.concatenate([noise(2), read(clips[i]), noise(2)[::-1]])
        if fires(export, audio) == 1:
            return audio
    pytest.fail("the tiny model fires once on none of 30 held-out clips")


def write_wav(path: Path, audio: np.ndarray) -> Path:
    sf.write(str(path), audio, SR, subtype="PCM_16")
    return path


def detect_command(model: Path, broker: Broker, *args: str) -> list[str]:
    return [sys.executable, "-m", "waketrain", "detect", "--model", str(model),
            "--mqtt", f"mqtt://127.0.0.1:{broker.port}", *args]  # fmt: skip


def detect(export: Path, broker: Broker, *args: str) -> str:
    """`waketrain detect` over a whole source, as on the board."""
    run = subprocess.run(
        detect_command(export / "wake_model.onnx", broker, *args),
        env=service_env(export),
        capture_output=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr.decode()
    broker.wait_for_health("stopped")  # the subscriber's network thread has caught up
    return run.stderr.decode()


def test_the_phrase_publishes_exactly_one_event_with_the_fields_tars_reads(
    export: Path, broker: Broker, phrase_stream: np.ndarray, tmp_path: Path
) -> None:
    metadata = json.loads((export / "metadata.json").read_text())
    wav = write_wav(tmp_path / "phrase.wav", phrase_stream)
    detect(export, broker, "--source", f"file:{wav}")
    events = broker.on_topic(f"stt/wake/{metadata['model_id']}")
    assert len(events) == 1, broker.messages
    event = events[0]
    assert set(event) == {"model_id", "phrase", "score", "threshold", "timestamp"}
    assert (event["model_id"], event["phrase"]) == (metadata["model_id"], "computer")
    assert event["threshold"] == metadata["threshold"]
    assert float(event["score"]) >= metadata["threshold"]  # type: ignore[arg-type]
    assert abs(float(event["timestamp"]) - time.time()) < 60  # type: ignore[arg-type]
    assert broker.on_topic("wake/event") == []  # only with --tars
    health = broker.on_topic("system/health/waketrain-detect")
    assert [h["event"] for h in health] == ["ready", "stopped"]


def test_tars_mode_also_publishes_the_wake_event_envelope(
    export: Path, broker: Broker, phrase_stream: np.ndarray, tmp_path: Path
) -> None:
    wav = write_wav(tmp_path / "phrase.wav", phrase_stream)
    detect(export, broker, "--source", f"file:{wav}", "--tars")
    (envelope,) = broker.on_topic("wake/event")
    assert set(envelope) == {"id", "type", "ts", "source", "data"}
    assert envelope["type"] == "wake.event"
    data = envelope["data"]
    assert isinstance(data, dict) and data["type"] == "wake" and data["cause"] == "wake_phrase"
    assert 0 < data["energy"] < 1 and data["confidence"] > 0
    assert len([t for t, _, _ in broker.messages if t.startswith("stt/wake/")]) == 1


def test_noise_alone_publishes_nothing(export: Path, broker: Broker, tmp_path: Path) -> None:
    audio = noise(30)
    assert fires(export, audio) == 0
    wav = write_wav(tmp_path / "noise.wav", audio)
    detect(export, broker, "--source", f"file:{wav}")
    assert [t for t, _, _ in broker.messages if t.startswith(("stt/wake/", "wake/"))] == []


def test_swapping_the_current_symlink_mid_stream_switches_models_without_a_gap(
    export: Path, broker: Broker, phrase_stream: np.ndarray, tmp_path: Path
) -> None:
    """As a deploy swaps `current`: the phrase right after the swap is caught by the new model."""
    board = tmp_path / "board"
    releases = board / "releases"
    first, second = releases / "first", releases / "second"
    shutil.copytree(export, first)
    shutil.copytree(export, second)
    metadata = json.loads((second / "metadata.json").read_text())
    (second / "metadata.json").write_text(json.dumps({**metadata, "model_id": "second-model"}))
    os.symlink("releases/first", board / "current")

    pcm = (np.clip(phrase_stream, -1, 1) * 32767).astype("<i2").tobytes()
    lead = (np.clip(noise(8), -1, 1) * 32767).astype("<i2").tobytes()
    with running(
        detect_command(board / "current" / "wake_model.onnx", broker, "--source", "stdin"),
        env=service_env(tmp_path),
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdin is not None and process.stderr is not None
        process.stdin.write(lead)
        process.stdin.flush()
        broker.wait_for_health("ready", metadata["model_id"])  # the first model hears the lead
        os.symlink("releases/second", board / "current.new")
        os.replace(board / "current.new", board / "current")
        process.stdin.write(pcm)
        process.stdin.close()
        said = process.stderr.read().decode()
        assert process.wait(timeout=60) == 0, said
    broker.wait_for_health("stopped")
    assert "now using second-model" in said
    ready = [
        h["model_id"]
        for h in broker.on_topic("system/health/waketrain-detect")
        if h["event"] == "ready"
    ]
    assert ready[-2:] == [metadata["model_id"], "second-model"]
    assert len(broker.on_topic("stt/wake/second-model")) == 1
    assert broker.on_topic(f"stt/wake/{metadata['model_id']}") == []


def test_the_detector_imports_nothing_from_training_or_the_service() -> None:
    """The board installs only the runtime extra: no torch, FastAPI, SQLAlchemy or soundfile."""
    code = (
        "import sys, waketrain.cli, waketrain.runtime.detector, waketrain.runtime.publish, "
        "waketrain.runtime.sources; "
        "print(','.join(m for m in ('torch', 'fastapi', 'sqlalchemy', 'soundfile', 'soxr') "
        "if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == ""


def test_tars_audio_fanout_socket_feeds_the_detector(
    export: Path, broker: Broker, phrase_stream: np.ndarray, tmp_path: Path
) -> None:
    """TARS's STT worker serves raw PCM16 on a Unix socket; the detector reads it beside TARS."""
    path = tmp_path / "audio-fanout.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall((np.clip(phrase_stream, -1, 1) * 32767).astype("<i2").tobytes())

    feeder = threading.Thread(target=serve)
    feeder.start()
    detect(export, broker, "--source", f"socket:{path}")
    feeder.join(timeout=10)
    server.close()
    model_id = json.loads((export / "metadata.json").read_text())["model_id"]
    assert len(broker.on_topic(f"stt/wake/{model_id}")) == 1


@contextmanager
def wyoming_server(export: Path) -> Iterator[int]:
    """`waketrain detect --wyoming` on a free loopback port; yields the port."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "waketrain", "detect", "--model", str(export / "wake_model.onnx"),
         "--wyoming", f"tcp://127.0.0.1:{port}"],
        env=service_env(export), stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


async def wyoming_client(port: int) -> AsyncTcpClient:
    client = AsyncTcpClient("127.0.0.1", port)
    for _ in range(100):
        try:
            await client.connect()
            return client
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"no Wyoming server on port {port}")


async def wyoming_stream(client: AsyncTcpClient, audio: np.ndarray) -> str | None:
    """One audio stream, start to stop; the name of the model that detected, or None."""
    await client.write_event(AudioStart(rate=SR, width=2, channels=1).event())
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    for i in range(0, len(pcm), 2048):
        chunk = AudioChunk(rate=SR, width=2, channels=1, audio=pcm[i : i + 2048], timestamp=i)
        await client.write_event(chunk.event())
    await client.write_event(AudioStop().event())
    while True:
        event = await asyncio.wait_for(client.read_event(), timeout=30)
        assert event is not None
        if Detection.is_type(event.type):
            return Detection.from_event(event).name
        if NotDetected.is_type(event.type):
            return None


def test_wyoming_clients_get_the_model_described_and_detections_streamed(
    export: Path, phrase_stream: np.ndarray
) -> None:
    """A Home Assistant style round trip: describe, then two audio streams."""
    model_id = json.loads((export / "metadata.json").read_text())["model_id"]

    async def session(port: int) -> tuple[Info, str | None, str | None]:
        client = await wyoming_client(port)
        await client.write_event(Describe().event())
        event = await asyncio.wait_for(client.read_event(), timeout=30)
        assert event is not None
        info = Info.from_event(event)
        heard = await wyoming_stream(client, phrase_stream)
        quiet = await wyoming_stream(client, noise(10))
        await client.disconnect()
        return info, heard, quiet

    with wyoming_server(export) as port:
        info, heard, quiet = asyncio.run(session(port))
    (model,) = info.wake[0].models
    assert (model.name, model.phrase) == (model_id, "computer")
    assert (heard, quiet) == (model_id, None)


def test_voices_in_fresh_wyoming_sessions_are_heard_as_in_one_continuous_stream(
    export: Path,
) -> None:
    """Home Assistant opens a session per wake stream; TARS streams one long fan-out.

    Twenty held-out voices, each one second after its own session opens, are heard at least
    as often as the same twenty framed alike in one stream through the board's detector.
    """
    clips = sorted(shared("wake/computer").glob("*.flac"))
    framed = [np.concatenate([noise(1), read(clips[i]), noise(1)[::-1]]) for i in HELD_OUT[:20]]

    detector = Detector(export / "wake_model.onnx")
    ends = np.cumsum([len(f) for f in framed]) / SR
    starts = np.concatenate([[0.0], ends[:-1]])
    times = [d.stream_seconds for d in detector.process(np.concatenate(framed))]
    in_stream = sum(any(a < t <= b for t in times) for a, b in zip(starts, ends, strict=True))

    async def one_session(port: int, audio: np.ndarray) -> bool:
        client = await wyoming_client(port)
        try:
            return await wyoming_stream(client, audio) is not None
        finally:
            await client.disconnect()

    async def every_session(port: int) -> int:
        return sum([await one_session(port, audio) for audio in framed])

    with wyoming_server(export) as port:
        in_sessions = asyncio.run(every_session(port))
    assert in_stream >= 10, f"the model hears only {in_stream} of 20 held-out voices"
    assert in_sessions >= in_stream, f"{in_sessions} heard in fresh sessions, {in_stream} in one"


def test_a_broken_release_is_refused_and_the_old_model_keeps_listening(
    export: Path, tmp_path: Path
) -> None:
    board = tmp_path / "board"
    good, broken = board / "releases" / "good", board / "releases" / "broken"
    shutil.copytree(export, good)
    broken.mkdir()
    shutil.copy(export / "wake_model.onnx", broken)  # no metadata.json beside it
    os.symlink("releases/good", board / "current")
    detector = Detector(board / "current" / "wake_model.onnx")
    model_id = detector.model.card.model_id
    detector.process(noise(1))

    os.symlink("releases/broken", board / "current.new")
    os.replace(board / "current.new", board / "current")
    assert detector.reload_if_changed() is False
    assert detector.reload_error and "metadata.json" in detector.reload_error
    assert detector.model.card.model_id == model_id
    assert len(detector.process(noise(1))) == 0  # still streaming with the good model
    assert detector.reload_if_changed() is False  # not retried until the link changes again


def test_a_threshold_given_on_the_command_line_wins_even_when_it_is_zero(export: Path) -> None:
    assert Detector(export / "wake_model.onnx", threshold=0.0).threshold == 0.0
    by_card = Detector(export / "wake_model.onnx")
    assert by_card.threshold == by_card.model.card.threshold > 0
    assert len(Detector(export / "wake_model.onnx", threshold=0.0).process(noise(3))) >= 1


def test_the_runtime_modules_import_each_other_without_a_cycle() -> None:
    """Types only, too (imports under TYPE_CHECKING count): each module can be read alone."""
    runtime = Path(__file__).resolve().parents[1] / "src" / "waketrain" / "runtime"
    graph: dict[str, set[str]] = {}
    for path in runtime.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "waketrain.runtime."
            ):
                imported.add(str(node.module).rsplit(".", 1)[1])
        graph[path.stem] = imported
    order = list(graphlib.TopologicalSorter(graph).static_order())  # CycleError on a cycle
    assert order.index("detection") < order.index("detector") < order.index("run_detector")
