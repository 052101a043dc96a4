"""The review queue for the board's captures, in headless Chromium against a real service.

The board's uploads come in through the real API with a board token; the operator judges
them by keyboard in the Captures tab while a second tab on the dashboard, never reloaded,
follows the counter.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
import numpy as np
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.conftest import Service, run_cli
from tests.e2e.conftest import board_wav, log_in, screenshot

DATASET = "ui-captures"
HOP_SECONDS = 0.08
THRESHOLD = 0.5
MODEL_ID = "ui-captures-0123abcd"
CARD = f'[data-testid="dataset-card"][data-dataset-id="{DATASET}"]'


@dataclass(frozen=True)
class Seeded:
    """One capture as the board sent it."""

    capture_id: str
    kind: str
    peak_score: float


@pytest.fixture(scope="module")
def ui_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A plain service: reviewing captures needs no board over SSH and no training."""
    service = Service(tmp_path_factory.mktemp("captures-ui-registry")).start()
    yield service
    service.stop()


def score_curve(peak: float, seconds: float = 3.0, peak_at: float = 2.0) -> list[float]:
    """A smoothed score per hop that rises to `peak` about 2 s in, as around a detection."""
    ends = (np.arange(int(seconds / HOP_SECONDS)) + 1) * HOP_SECONDS
    curve = 0.02 + (peak - 0.02) * np.exp(-(((ends - peak_at) / 0.25) ** 2))
    return [round(float(s), 4) for s in curve]


def send_capture(
    url: str, token: str, wav: bytes, kind: str, peak: float, captured_at: datetime
) -> Seeded:
    capture_id = uuid.uuid4().hex
    sidecar = {
        "capture_id": capture_id, "kind": kind, "model_id": MODEL_ID, "threshold": THRESHOLD,
        "peak_score": peak, "scores": score_curve(peak), "hop_seconds": HOP_SECONDS,
        "captured_at": captured_at.isoformat(), "board": "tars-pi",
    }  # fmt: skip
    response = httpx.post(
        f"{url}/datasets/{DATASET}/captures",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": (f"{capture_id}.wav", wav, "audio/wav")},
        data={"metadata": json.dumps(sidecar)},
    )
    assert response.status_code == 201, response.text
    return Seeded(capture_id, kind, peak)


@pytest.fixture(scope="module")
def seeded(ui_service: Service) -> list[Seeded]:
    """Four captures from the board, oldest first: real "computer" wakes and "snowboy" ones."""
    with ui_service.client() as api:
        created = api.post("/datasets", json={"id": DATASET, "phrase": "computer"})
        assert created.status_code == 201, created.text
    token = run_cli(ui_service.data_dir, "token", "create", "--captures-for", DATASET)
    assert token.returncode == 0, token.stderr
    start = datetime.now(timezone.utc) - timedelta(minutes=10)
    sent = [
        ("wake/computer", 0, "wake", 0.93),
        ("wake/snowboy", 0, "near_miss", 0.41),
        ("wake/computer", 1, "wake", 0.88),
        ("wake/snowboy", 1, "wake", 0.62),
    ]
    board_token = token.stdout.strip()
    captures: list[Seeded] = []
    for n, (folder, index, kind, peak) in enumerate(sent):
        wav = board_wav(folder, index)
        captured_at = start + timedelta(minutes=n)
        captures.append(send_capture(ui_service.url, board_token, wav, kind, peak, captured_at))
    return captures


def shot(page: Page, name: str) -> None:
    """A screenshot from the top: the sticky header would land mid-page if it were scrolled."""
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, name)


@pytest.fixture(scope="module")
def dashboard(context: BrowserContext) -> Page:
    """A second tab on the dashboard, never reloaded: it must follow the captures by itself."""
    return context.new_page()


def test_the_dashboard_says_how_many_captures_wait_for_review(
    page: Page, dashboard: Page, seeded: list[Seeded]
) -> None:
    log_in(page)
    to_review = page.locator(CARD).get_by_test_id("card-captures")
    expect(to_review).to_have_text("4 captures to review")
    dashboard.goto("/")
    expect(dashboard.locator(CARD).get_by_test_id("card-captures")).to_be_visible()
    shot(page, "09-captures-dashboard")
    page.locator(CARD).click()  # the card as a whole still opens the dataset
    expect(page).to_have_url(re.compile(rf"#/datasets/{DATASET}$"))
    page.go_back()
    to_review.click()
    expect(page).to_have_url(re.compile(rf"#/datasets/{DATASET}\?tab=captures$"))
    expect(page.get_by_test_id("tab-captures")).to_have_attribute("aria-selected", "true")


def test_the_queue_shows_the_newest_capture_with_its_score_curve(
    page: Page, seeded: list[Seeded]
) -> None:
    newest_first = [s.capture_id for s in reversed(seeded)]
    rows = page.get_by_test_id("capture-row")
    expect(rows).to_have_count(4)
    assert [r.get_attribute("data-capture-id") for r in rows.all()] == newest_first
    expect(page.get_by_test_id("tab-captures-count")).to_have_text("4")
    expect(page.get_by_test_id("summary-captures")).to_have_text("4 captures to review")

    detail = page.get_by_test_id("capture-detail")
    expect(detail).to_have_attribute("data-capture-id", newest_first[0])
    expect(rows.first).to_have_attribute("aria-selected", "true")
    expect(page.get_by_test_id("capture-kind")).to_have_text("Woke")
    expect(page.get_by_test_id("capture-model")).to_have_text(MODEL_ID)
    expect(page.get_by_test_id("capture-board")).to_have_text("tars-pi")
    chart = page.get_by_test_id("capture-chart")
    expect(chart.locator("polyline.score-line")).to_have_count(1)
    expect(chart.locator(".threshold-label")).to_have_text("threshold 0.50")
    expect(chart.locator(".detection text")).to_have_text(re.compile(r"^peak 0\.62 at 2\.0\d s$"))

    expect(page.get_by_test_id("capture-waveform")).to_have_attribute("data-ready", "true")
    page.keyboard.press(" ")
    expect(page.get_by_test_id("capture-play")).to_have_attribute("data-playing", "true")
    expect(chart.locator(".playhead")).to_have_count(1)  # the curve read against what is heard
    shot(page, "10-captures-queue")
    page.keyboard.press(" ")
    expect(page.get_by_test_id("capture-play")).to_have_attribute("data-playing", "false")

    page.keyboard.press("j")  # the near miss, two further down
    page.keyboard.press("j")
    expect(detail).to_have_attribute("data-capture-id", newest_first[2])
    expect(page.get_by_test_id("capture-kind")).to_have_text("Near miss")
    # Every selection loads its own audio, not only the first one.
    expect(page.get_by_test_id("capture-waveform")).to_have_attribute("data-ready", "true")
    page.keyboard.press("k")
    page.keyboard.press("ArrowUp")
    expect(detail).to_have_attribute("data-capture-id", newest_first[0])


def test_three_keys_judge_three_captures_and_every_counter_follows(
    page: Page, dashboard: Page, ui_service: Service, seeded: list[Seeded]
) -> None:
    newest_first = [s.capture_id for s in reversed(seeded)]
    detail = page.get_by_test_id("capture-detail")
    verdicts = {"p": newest_first[0], "n": newest_first[1], "x": newest_first[2]}
    for key, capture_id in verdicts.items():
        expect(detail).to_have_attribute("data-capture-id", capture_id)
        page.keyboard.press(key)
    # After each verdict the next capture is in hand: the last one left.
    expect(detail).to_have_attribute("data-capture-id", newest_first[3])
    expect(page.get_by_test_id("capture-row")).to_have_count(1)
    expect(page.get_by_test_id("tab-captures-count")).to_have_text("1")
    expect(page.get_by_test_id("summary-captures")).to_have_text("1 capture to review")
    expect(page.get_by_test_id("captures-to-review")).to_have_text("1")
    on_dashboard = dashboard.locator(CARD).get_by_test_id("card-captures")
    expect(on_dashboard).to_have_text("1 capture to review")
    shot(dashboard, "11-captures-dashboard-after-review")

    with ui_service.client() as api:
        stored = {c: api.get(f"/captures/{c}").json() for c in verdicts.values()}
    real, false, discarded = (stored[verdicts[k]] for k in "pnx")
    assert (real["status"], real["verdict"]) == ("reviewed", "positive")
    assert (false["status"], false["verdict"]) == ("reviewed", "negative")
    assert discarded["status"] == "discarded"
    assert discarded["verdict"] is None and discarded["clip_id"] is None
    assert real["reviewed_by"] == "admin" and real["clip_id"] and false["clip_id"]

    page.get_by_test_id("capture-filter").select_option("all")
    expect(page.get_by_test_id("capture-row")).to_have_count(4)
    statuses = [r.get_attribute("data-status") for r in page.get_by_test_id("capture-row").all()]
    assert statuses == ["reviewed", "reviewed", "discarded", "unreviewed"]
    page.get_by_test_id("capture-row").first.click()
    expect(page.get_by_test_id("capture-verdict")).to_have_text("real wake by admin")
    # A reviewed capture plays from the clip it became.
    expect(page.get_by_test_id("capture-waveform")).to_have_attribute("data-ready", "true")
    shot(page, "12-captures-reviewed")

    page.get_by_test_id("tab-recordings").click()
    clips = page.get_by_test_id("recording-row")
    expect(clips).to_have_count(2)
    for verdict in (real, false):
        row = page.locator(f'[data-testid="recording-row"][data-clip-id="{verdict["clip_id"]}"]')
        expect(row.get_by_test_id("row-label")).to_have_value(verdict["verdict"])
        expect(row.locator("td").nth(6)).to_have_text("capture")
    expect(page.get_by_test_id("count-positive")).to_have_text("1")
    expect(page.get_by_test_id("count-negative")).to_have_text("1")
    shot(page, "13-captures-as-clips")


def test_bulk_delete_asks_first_then_empties_the_queue(
    page: Page, dashboard: Page, ui_service: Service
) -> None:
    page.get_by_test_id("tab-captures").click()
    page.get_by_test_id("capture-filter").select_option("unreviewed")
    expect(page.get_by_test_id("capture-row")).to_have_count(1)
    page.get_by_test_id("captures-delete-unreviewed").click()
    expect(page.get_by_test_id("captures-delete-confirm-bar")).to_contain_text(
        "Delete all 1 unreviewed"
    )
    page.get_by_test_id("captures-delete-cancel").click()  # asked, and nothing happened
    expect(page.get_by_test_id("capture-row")).to_have_count(1)

    page.get_by_test_id("captures-delete-unreviewed").click()
    page.get_by_test_id("captures-delete-confirm").click()
    expect(page.get_by_test_id("capture-row")).to_have_count(0)
    expect(page.get_by_test_id("tab-captures-count")).to_have_count(0)
    expect(page.get_by_test_id("summary-captures")).to_have_count(0)
    expect(dashboard.locator(CARD).get_by_test_id("card-captures")).to_have_count(0)

    page.get_by_test_id("captures-delete-discarded").click()
    page.get_by_test_id("captures-delete-confirm").click()
    page.get_by_test_id("capture-filter").select_option("all")
    expect(page.get_by_test_id("capture-row")).to_have_count(2)  # the reviewed ones stay
    with ui_service.client() as api:
        left = api.get(f"/datasets/{DATASET}/captures", params={"status": "all"}).json()
    assert sorted(c["status"] for c in left["items"]) == ["reviewed", "reviewed"]
