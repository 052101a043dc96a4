"""The negative bank over HTTP: upload, add a server folder, follow progress, remove."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Service, shared

DIGITS = "speech_long/words_fsdd_digits"


@pytest.fixture(scope="module")
def bank_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    allowed = str(shared("speech_long"))
    service = Service(
        tmp_path_factory.mktemp("bank-registry"),
        args=("--no-worker",),
        env={"WAKETRAIN_NEGATIVES_IMPORT_DIRS": allowed},
    ).start()
    with service.client() as client:
        yield client
    service.stop()


def finished(client: httpx.Client, import_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        bank = client.get("/negatives").json()
        job = next(j for j in bank["imports"] if j["id"] == import_id)
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.5)
    raise AssertionError("the add did not finish in 300 s")


def test_uploads_and_server_folders_join_the_bank_in_the_background(
    bank_api: httpx.Client,
) -> None:
    assert bank_api.get("/negatives").json() == {"sets": [], "hours": 0.0, "imports": []}
    files = sorted(shared("speech/two_speakers").glob("*.flac"))[:3]
    sent = bank_api.post(
        "/negatives/uploads",
        files=[("files", (f.name, f.read_bytes(), "audio/flac")) for f in files],
        data={"set_id": "kitchen-tv", "kind": "tv"},
    )
    assert sent.status_code == 202, sent.text
    job = finished(bank_api, sent.json()["id"])
    assert job["state"] == "done" and job["message"].startswith("added 3 files")

    folder = bank_api.post("/negatives/imports", json={"paths": [str(shared(DIGITS))],
                                                       "kind": "speech"})  # fmt: skip
    assert folder.status_code == 202, folder.text
    assert finished(bank_api, folder.json()["id"])["state"] == "done"
    bank = bank_api.get("/negatives").json()
    sets = {s["id"]: s for s in bank["sets"]}
    assert sets["kitchen-tv"]["kind"] == "tv" and sets["kitchen-tv"]["files"] == 3
    assert sets["words_fsdd_digits"]["hours"] == pytest.approx(0.2, abs=0.01)
    assert bank["hours"] == pytest.approx(sum(s["hours"] for s in bank["sets"]))

    removed = bank_api.delete("/negatives/kitchen-tv")
    assert removed.status_code == 200 and removed.json()["files"] == 3
    assert bank_api.delete("/negatives/kitchen-tv").status_code == 404
    assert [s["id"] for s in bank_api.get("/negatives").json()["sets"]] == ["words_fsdd_digits"]


def test_server_paths_outside_the_allowed_folders_are_refused(
    bank_api: httpx.Client, tmp_path: Path
) -> None:
    refused = bank_api.post("/negatives/imports", json={"paths": [str(tmp_path)]})
    assert refused.status_code == 422
    assert "not under WAKETRAIN_NEGATIVES_IMPORT_DIRS" in refused.json()["detail"]
    escape = str(shared("speech_long")) + "/../wake"
    assert bank_api.post("/negatives/imports", json={"paths": [escape]}).status_code == 422
    bad_set = bank_api.post(
        "/negatives/uploads",
        files=[("files", ("a.wav", b"x", "audio/wav"))],
        data={"set_id": "../etc"},
    )
    assert bad_set.status_code == 422 and "Invalid negative set id" in bad_set.json()["detail"]
