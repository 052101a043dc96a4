"""A recording longer than a clip, split into phrases in the browser: proposed, checked, added."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from playwright.sync_api import Page, expect

from tests.conftest import Service, create_dataset, shared
from tests.e2e.conftest import log_in, screenshot

DATASET = "long-ui"
TAKES = 8


@pytest.fixture(scope="module")
def ui_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(tmp_path_factory.mktemp("long-recording-registry")).start()
    with service.client() as api:
        create_dataset(api, DATASET)
    yield service
    service.stop()


def session_recording(path: Path) -> Path:
    """One speaker's takes of the phrase, 1.5 s apart, in one 16 kHz WAV (longer than a clip)."""
    files = sorted(shared("wake/computer").glob("*.flac"))[:TAKES]
    takes = [sf.read(str(p), dtype="float32")[0] for p in files]
    gap = np.zeros(24_000, np.float32)
    sf.write(str(path), np.concatenate([x for take in takes for x in (take, gap)]), 16_000)
    return path


def test_a_long_recording_becomes_the_clips_the_operator_keeps(
    page: Page, ui_service: Service, tmp_path: Path
) -> None:
    recording = session_recording(tmp_path / "anna-session.wav")
    assert sf.info(str(recording)).duration > 30  # too long to upload as one clip
    log_in(page)
    page.goto(f"/#/datasets/{DATASET}")
    page.get_by_test_id("tab-upload").click()
    page.get_by_test_id("long-recording-input").set_input_files(str(recording))
    segments = page.get_by_test_id("segment")
    expect(segments).to_have_count(TAKES, timeout=30_000)
    expect(page.get_by_test_id("long-recording-summary")).to_contain_text(f"{TAKES} phrases found")

    segments.nth(TAKES - 1).get_by_test_id("segment-keep").uncheck()  # a take that went wrong
    segments.first.get_by_test_id("segment-start").fill("0")  # keep the breath before it
    page.get_by_test_id("long-recording-label").select_option("positive")
    page.get_by_test_id("long-recording-speaker").fill("anna")
    accept = page.get_by_test_id("long-recording-accept")
    expect(accept).to_have_text(f"Add {TAKES - 1} clips")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "03b-long-recording")
    accept.click()
    expect(segments).to_have_count(0)

    with ui_service.client() as api:
        clips = api.get(f"/datasets/{DATASET}/recordings", params={"limit": 100}).json()["items"]
    assert len(clips) == TAKES - 1
    assert {(c["label"], c["speaker"]) for c in clips} == {("positive", "anna")}
    first = min(clips, key=lambda c: c["notes"])
    assert first["notes"].startswith("from anna-session at 0.00-")
