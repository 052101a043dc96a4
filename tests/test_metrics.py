"""Prometheus /metrics and the structured request log of a real running service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, Service, shared

UPLOAD = "/datasets/tars-default/recordings"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data_dir = tmp_path_factory.mktemp("metrics") / "data"
    service = Service(data_dir, args=("--no-worker",), env={"WAKETRAIN_LOG_LEVEL": "info"})
    yield service.start()
    service.stop()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus' text format, or None when absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return None


def test_metrics_count_uploads_clips_and_requests(service: Service) -> None:
    clips = sorted(shared("wake/computer").glob("*.flac"))[:2]
    with service.client() as client:
        for path in clips:
            response = client.post(UPLOAD, files={"file": (path.name, path.read_bytes())},
                                   data={"metadata": '{"label": "positive"}'})  # fmt: skip
            assert response.status_code == 201
        refused = client.post(UPLOAD, files={"file": ("x.wav", b"not audio")},
                              data={"metadata": '{"label": "positive"}'})  # fmt: skip
        assert refused.status_code == 415
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert sample(text, "waketrain_dataset_clips", dataset="tars-default", label="positive") == 2
    assert sample(text, "waketrain_uploads_total", outcome="stored") == 2
    assert sample(text, "waketrain_uploads_total", outcome="refused") == 1
    requests = {"method": "POST", "route": "/datasets/{dataset_id}/recordings", "status": "201"}
    assert sample(text, "waketrain_http_requests_total", **requests) == 2
    assert "# TYPE waketrain_http_request_duration_seconds histogram" in text
    assert "# HELP waketrain_jobs Training jobs by status." in text


def test_each_request_is_logged_as_json_with_its_id_and_user_and_no_secret(
    service: Service,
) -> None:
    token = service.token()
    response = httpx.get(service.url + "/datasets", headers={
        "Authorization": f"Bearer {token}", "X-Request-ID": "trace-42"})  # fmt: skip
    assert response.headers["x-request-id"] == "trace-42"
    generated = httpx.get(service.url + "/healthz").headers["x-request-id"]
    assert len(generated) == 16
    lines = [json.loads(line) for line in Path(service.log_path).read_text().splitlines()
             if line.startswith("{")]  # fmt: skip
    request = next(e for e in lines if e.get("request_id") == "trace-42")
    assert request["event"] == "request" and request["user"] == "admin"
    assert request["route"] == "/datasets" and request["status"] == 200
    log_text = Path(service.log_path).read_text()
    assert token not in log_text and ADMIN_PASSWORD not in log_text
