"""Always-visible job state in headless Chromium, against a real service and its worker.

The running-job bar follows a job on pages other than the one it was started from, and after a
reload, and a deployment to the board (a real sshd) while it runs; the finished job's
notification survives reloads until the operator dismisses it; and the toast that announces it
lies over no control, at desktop and at phone width.

The steps share one browser page and run in order, as an operator would.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.board import Board
from tests.conftest import Service, create_dataset, shared, upload
from tests.e2e.conftest import MIN_CLIPS, log_in, screenshot

DATASET = "job-state"
# Small enough for a 2-core CPU; long enough (data prep, one epoch, eval, export) to be seen.
TINY = {"backend": "marblenet", "synth.use": "off", "epochs": 1, "batch_size": 16,
        "negatives_per_positive": 1.0, "model.channels": 16, "model.mel_bands": 32,
        "augment.hard_negatives_per_positive": 0.5}  # fmt: skip
TRAINING_MS = 240_000
STAGE = re.compile(r"^(data_prep|training|eval|export)$")
STAGE_LABEL = re.compile(r"Data prep|Training|Evaluation|Export")
JOB = '[data-testid="running-job"]'
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# Every visible toast, the controls (outside toasts) its box intersects, and the control just
# under it: the nearest one below its top edge that shares some of its width.
TOAST_LAYOUT = """() => {
  const box = (el) => { const r = el.getBoundingClientRect();
    return { x: r.left, y: r.top, width: r.width, height: r.height }; };
  const shown = (el) => { const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden"; };
  const name = (el) => el.dataset.testid || el.getAttribute("aria-label")
    || el.textContent.trim().slice(0, 40) || el.tagName;
  const controls = [...document.querySelectorAll(
    "a[href], button, input, select, textarea, [role=tab], [tabindex]:not([tabindex='-1'])")]
    .filter((el) => !el.closest("[data-testid=toast]") && shown(el));
  const apart = (a, b) => a.x + a.width <= b.x || b.x + b.width <= a.x
    || a.y + a.height <= b.y || b.y + b.height <= a.y;
  return [...document.querySelectorAll("[data-testid=toast]")].filter(shown).map((toast) => {
    const t = box(toast);
    const covered = controls.filter((c) => !apart(t, box(c))).map(name);
    const under = controls.map((c) => ({ c, b: box(c) }))
      .filter(({ b }) => b.y >= t.y && b.x < t.x + t.width && t.x < b.x + b.width)
      .sort((p, q) => p.b.y - q.b.y)[0];
    let hit = null;
    if (under) {
      const { x, y, width, height } = under.b;
      const at = document.elementFromPoint(x + width / 2, y + height / 2);
      hit = at !== null && (at === under.c || under.c.contains(at));
    }
    return { toast: t, text: toast.textContent, covered,
             under: under ? { name: name(under.c), box: under.b, hit } : null };
  });
}"""


@pytest.fixture(scope="module")
def dataset(ui_service: Service) -> str:
    """Real "computer" wakes and "snowboy" negatives, uploaded through the API."""
    with ui_service.client() as api:
        create_dataset(api, DATASET)
        for folder, label in (("wake/computer", "positive"), ("wake/snowboy", "negative")):
            for path in sorted(shared(folder).glob("*.flac"))[:MIN_CLIPS]:
                response = upload(api, DATASET, path.read_bytes(), path.name, label, "crowd")
                assert response.status_code == 201, response.text
    return DATASET


@pytest.fixture(scope="module")
def state() -> dict[str, str]:
    """What one step learns and a later one checks (the job's id)."""
    return {}


def toast_layout(page: Page) -> list[dict[str, Any]]:
    layout: list[dict[str, Any]] = page.evaluate(TOAST_LAYOUT)
    return layout


def assert_toasts_cover_no_control(page: Page) -> None:
    expect(page.get_by_test_id("toast").first).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    for toast in toast_layout(page):
        assert toast["covered"] == [], f"the toast {toast['text']!r} lies over {toast['covered']}"
        under = toast["under"]
        assert under is not None, "no control under the toast to compare with"
        bottom = toast["toast"]["y"] + toast["toast"]["height"]
        assert under["box"]["y"] >= bottom, f"{under['name']} starts inside the toast"
        assert under["hit"], f"a click on {under['name']} would not reach it"


def test_the_operator_logs_in(page: Page, dataset: str) -> None:
    page.set_viewport_size(DESKTOP)
    log_in(page)
    card = page.locator(f'[data-testid="dataset-card"][data-dataset-id="{dataset}"]')
    expect(card).to_be_visible()
    expect(page.locator(JOB)).to_have_count(0)


def test_the_running_job_bar_follows_the_job_on_other_pages_and_after_a_reload(
    page: Page, dataset: str, state: dict[str, str]
) -> None:
    page.goto(f"/#/datasets/{dataset}")
    page.get_by_test_id("train-advanced").click()
    page.get_by_test_id("train-overrides").fill(json.dumps(TINY))
    page.get_by_test_id("train-button").click()
    expect(page.get_by_test_id("training-modal")).to_be_visible()

    # The header stays usable above the modal: leave for the negative bank.
    page.get_by_test_id("nav-negatives").click()
    expect(page.get_by_test_id("negative-bank")).to_be_visible()
    job = page.locator(JOB)
    expect(job).to_have_count(1)
    expect(job).to_have_attribute("data-dataset-id", dataset)
    expect(job).to_have_attribute("data-status", "running", timeout=60_000)
    expect(job).to_have_attribute("data-stage", STAGE)
    expect(job.get_by_test_id("running-job-stage")).to_have_text(STAGE_LABEL)
    job_id = job.get_attribute("data-job-id") or ""
    state["job_id"] = job_id
    link = job.get_by_test_id("running-job-link")
    expect(link).to_have_attribute("href", f"#/datasets/{dataset}?job={job_id}")
    screenshot(page, "14-job-state-running-bar")
    page.set_viewport_size(PHONE)
    expect(link).to_be_visible()
    screenshot(page, "14b-job-state-running-bar-phone")
    page.set_viewport_size(DESKTOP)

    # A reload reads the job's state back from the API.
    page.reload()
    expect(page.get_by_test_id("negative-bank")).to_be_visible()
    expect(job).to_have_attribute("data-job-id", job_id)
    expect(job).to_have_attribute("data-stage", STAGE)
    page.locator(".header-nav a", has_text="Datasets").click()
    expect(page.locator('[data-testid="dataset-card"]').first).to_be_visible()
    expect(job).to_have_attribute("data-job-id", job_id)

    # The bar's link opens the job.
    job.get_by_test_id("running-job-link").click()
    expect(page.get_by_test_id("training-modal")).to_be_visible()
    expect(page.locator("#training-title")).to_contain_text(job_id[:8])
    page.get_by_test_id("training-close").click()


def test_the_finished_job_toast_lies_over_no_control_at_phone_and_desktop_width(
    page: Page, state: dict[str, str]
) -> None:
    page.set_viewport_size(PHONE)
    expect(page.locator(JOB)).to_have_count(0, timeout=TRAINING_MS)
    toast = page.get_by_test_id("toast").filter(has_text=f"Training {state['job_id'][:8]}")
    expect(toast).to_be_visible()
    expect(toast).to_contain_text("succeeded")
    assert_toasts_cover_no_control(page)
    page.set_viewport_size(DESKTOP)
    assert_toasts_cover_no_control(page)
    screenshot(page, "15-job-state-toast-desktop")
    page.set_viewport_size(PHONE)
    screenshot(page, "15b-job-state-toast-phone")
    page.set_viewport_size(DESKTOP)


def test_the_notification_survives_reloads_until_it_is_dismissed(
    page: Page, state: dict[str, str]
) -> None:
    job_id = state["job_id"]
    item = page.get_by_test_id("notification").filter(has_text=f"Training {job_id[:8]} succeeded")
    unread = page.get_by_test_id("notifications-unread")

    page.reload()  # not read yet: the bell still counts it
    expect(page.locator(JOB)).to_have_count(0)
    expect(unread).to_have_text("1")
    page.get_by_test_id("notifications-button").click()
    expect(item).to_be_visible()
    expect(unread).to_have_count(0)
    screenshot(page, "16-job-state-notifications")

    page.reload()  # read, not dismissed: still listed, no longer counted
    expect(page.get_by_test_id("notifications-button")).to_be_visible()
    expect(unread).to_have_count(0)
    page.get_by_test_id("notifications-button").click()
    expect(item).to_be_visible()
    item.get_by_test_id("notification-dismiss").click()
    expect(item).to_have_count(0)
    expect(page.get_by_test_id("notifications-empty")).to_be_visible()

    page.reload()  # dismissed for good
    page.get_by_test_id("notifications-button").click()
    expect(page.get_by_test_id("notifications-empty")).to_be_visible()
    expect(page.get_by_test_id("notification")).to_have_count(0)


# Every status the bar's deployment line shows, in order, as the page renders it.
WATCH_DEPLOYMENTS = """() => {
  window.shownDeployments = [];
  const note = () => {
    for (const line of document.querySelectorAll("[data-testid=running-deployment]")) {
      if (window.shownDeployments.at(-1) !== line.dataset.status) {
        window.shownDeployments.push(line.dataset.status);
      }
    }
  };
  new MutationObserver(note).observe(document.body,
    { subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"] });
}"""


def test_a_deployment_shows_in_the_bar_while_it_runs(
    page: Page, board: Board, state: dict[str, str]
) -> None:
    page.get_by_test_id("nav-negatives").click()
    expect(page.get_by_test_id("negative-bank")).to_be_visible()
    page.evaluate(WATCH_DEPLOYMENTS)
    started = page.request.post(
        "/deploy", data={"job_id": state["job_id"]}, headers={"X-Requested-With": "waketrain"}
    )
    assert started.status == 202, started.text()
    toast = page.get_by_test_id("toast").filter(has_text="Deployment")
    expect(toast).to_contain_text("Deployment succeeded", timeout=60_000)
    expect(page.get_by_test_id("running-deployment")).to_have_count(0)
    shown = page.evaluate("window.shownDeployments")
    assert shown and set(shown) <= {"pending", "transferring", "applying"}, shown
    assert (board.deploy_path / "current" / "wake_model.onnx").is_file()
