"""Where detections go: MQTT for TARS (and anyone else), or JSON lines on stdout."""

from __future__ import annotations

import json
import time
import uuid
from typing import Protocol
from urllib.parse import urlparse

from waketrain.runtime.detection import Detection

HEALTH_TOPIC = "system/health/waketrain-detect"
TARS_WAKE_TOPIC = "wake/event"
CLOSE_TIMEOUT_SECONDS = 5


class Publisher(Protocol):
    def ready(self, model_id: str, phrase: str) -> None: ...
    def detection(self, detection: Detection) -> None: ...
    def close(self) -> None: ...


def wake_topic(model_id: str) -> str:
    return f"stt/wake/{model_id}"


def tars_envelope(detection: Detection) -> dict[str, object]:
    """TARS's own wake event, as its wake-activation service publishes it."""
    return {
        "id": uuid.uuid4().hex,
        "type": "wake.event",
        "ts": detection.timestamp,
        "source": "waketrain-detect",
        "data": {
            "type": "wake",
            "confidence": round(detection.score, 4),
            "energy": round(detection.energy, 6),
            "cause": "wake_phrase",
            "ts": detection.timestamp,
        },
    }


def health(ok: bool, event: str, **detail: object) -> bytes:
    return json.dumps({"ok": ok, "event": event, "ts": time.time(), **detail}).encode()


class StdoutPublisher:
    """No broker configured: one JSON object per line, for logs and pipes."""

    def __init__(self, tars: bool = False) -> None:
        self.tars = tars

    def ready(self, model_id: str, phrase: str) -> None:
        print(json.dumps({"event": "ready", "model_id": model_id, "phrase": phrase}), flush=True)

    def detection(self, detection: Detection) -> None:
        payload = tars_envelope(detection) if self.tars else detection.payload()
        print(json.dumps(payload), flush=True)

    def close(self) -> None:
        pass


class MqttPublisher:
    """paho-mqtt with its own network thread: it reconnects by itself, and the broker
    publishes the retained 'offline' health message if the detector dies."""

    def __init__(self, url: str, tars: bool = False, client_id: str | None = None) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
            raise ValueError(f"MQTT URL {url!r} must look like mqtt://[user:pass@]host[:port]")
        self.tars = tars
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"waketrain-detect-{uuid.uuid4().hex[:8]}",
        )
        if parsed.username:
            self._client.username_pw_set(parsed.username, parsed.password)
        self._client.will_set(HEALTH_TOPIC, health(False, "offline"), qos=1, retain=True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.connect_async(parsed.hostname, parsed.port or 1883)
        self._client.loop_start()
        self._pending: list[mqtt.MQTTMessageInfo] = []

    def ready(self, model_id: str, phrase: str) -> None:
        self._client.publish(
            HEALTH_TOPIC,
            health(True, "ready", model_id=model_id, phrase=phrase),
            qos=1,
            retain=True,
        )

    def detection(self, detection: Detection) -> None:
        topic, payload = wake_topic(detection.model_id), json.dumps(detection.payload())
        self._pending.append(self._client.publish(topic, payload, qos=1))
        if self.tars:
            envelope = json.dumps(tars_envelope(detection))
            self._pending.append(self._client.publish(TARS_WAKE_TOPIC, envelope, qos=1))

    def close(self) -> None:
        """Deliver what is queued (a file source ends fast), then say so and leave."""
        self._pending.append(
            self._client.publish(HEALTH_TOPIC, health(False, "stopped"), qos=1, retain=True)
        )
        for info in self._pending:
            try:
                info.wait_for_publish(timeout=CLOSE_TIMEOUT_SECONDS)
            except (RuntimeError, ValueError):  # never connected, or the queue was dropped
                break
        self._client.disconnect()
        self._client.loop_stop()


def open_publisher(mqtt_url: str | None, tars: bool) -> Publisher:
    return MqttPublisher(mqtt_url, tars) if mqtt_url else StdoutPublisher(tars)
