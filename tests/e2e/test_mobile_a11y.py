"""Every page at a desktop's width and a phone's, in headless Chromium against a real service.

On each page, at 1280 by 800 and at 390 by 844: the page never scrolls sideways (wide tables
scroll inside their own box), every control is reached by Tab and shows where the focus is,
controls on a phone are big enough for a fingertip, and axe-core finds nothing serious or
critical. The steps share one page and run in order, as an operator on a phone would.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.board import Board
from tests.conftest import Service, shared
from tests.e2e.conftest import (
    CHROMIUM_ARGS,
    GATE_ENV,
    MIN_CLIPS,
    board_wav,
    chromium,
    log_in,
    screenshot,
)

AXE_JS = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "axe-core" / "axe.min.js"
DATASET = "mobile-computer"
SIZES = {"1280": {"width": 1280, "height": 800}, "390": {"width": 390, "height": 844}}
PHONE = "390"
# A fingertip on a phone: 40 CSS px (Apple asks 44 pt, WCAG 2.5.8 at least 24 px).
MIN_TAP_PX = 40
SERIOUS = ("serious", "critical")
# Seconds on a 2-core CPU: a model for the Models and Try it pages to show, not a good one.
TINY = {"backend": "marblenet", "synth.use": "off", "epochs": 1, "batch_size": 16,
        "model.channels": 16, "model.mel_bands": 32}  # fmt: skip
TRAINING_MS = 240_000

# The widest boxes that stick out of the viewport, outside any box that scrolls or clips them.
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const scrollWidth = document.documentElement.scrollWidth;
  const describe = (el) => el.tagName.toLowerCase()
    + (el.dataset.testid ? `[data-testid=${el.dataset.testid}]` : "")
    + (typeof el.className === "string" && el.className.trim()
      ? "." + el.className.trim().split(/\\s+/).join(".") : "");
  const clipped = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== "visible") return true;
    }
    return false;
  };
  const offenders = [];
  if (scrollWidth > width) {
    for (const el of document.body.querySelectorAll("*")) {
      const box = el.getBoundingClientRect();
      if (box.right <= width + 0.5 || clipped(el)) continue;
      const parent = el.parentElement.getBoundingClientRect();
      if (parent.right > width + 0.5 && !clipped(el.parentElement)) continue;
      offenders.push(`${describe(el)} reaches ${Math.round(box.right + scrollX)} px`);
    }
  }
  return { width, scrollWidth, offenders: offenders.slice(0, 8) };
}"""

# Controls a finger must hit on a phone. A link inside a sentence is exempt, as in WCAG 2.5.8;
# a visually hidden file input is operated through its label, which is measured instead.
SMALL_TARGETS_JS = """(minPx) => {
  const selector = "a[href], button, input:not([type=hidden]), select, textarea, "
    + "[role=button], [role=tab], label.btn, audio[controls]";
  const small = [];
  for (const el of document.querySelectorAll(selector)) {
    if (!el.getClientRects().length || getComputedStyle(el).visibility === "hidden") continue;
    if (el.closest(".visually-hidden")) continue;
    if (getComputedStyle(el).display === "inline") continue;
    const box = el.getBoundingClientRect();
    if (box.width >= minPx - 0.5 && box.height >= minPx - 0.5) continue;
    const name = (el.getAttribute("aria-label") || el.textContent || el.getAttribute("placeholder")
      || el.dataset.testid || "").trim().slice(0, 40);
    const size = `${Math.round(box.width)} by ${Math.round(box.height)} px`;
    small.push(`${el.tagName.toLowerCase()} "${name}" is ${size}`);
  }
  return small;
}"""

# One Tab press: where the focus went, and whether a person can see it there.
FOCUS_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  window.__tabbed = window.__tabbed || new Set();
  // Tab walks through an <audio>'s own buttons with the audio element focused all along.
  const again = el === window.__lastTabbed;
  window.__lastTabbed = el;
  const seen = window.__tabbed.has(el) && !again;
  window.__tabbed.add(el);
  // A visually hidden file input shows its focus on the label around it; the browser's own
  // audio controls draw their own ring, out of reach of the page's styles.
  const shown = el.closest(".visually-hidden") || el.matches(".visually-hidden")
    ? el.closest("label") || el : el;
  const style = getComputedStyle(shown);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  const name = (el.getAttribute("aria-label") || el.textContent || el.dataset.testid
    || el.querySelector("img")?.alt || el.getAttribute("placeholder") || "").trim().slice(0, 40);
  return { seen, visible: outline || style.boxShadow !== "none" || el.matches("audio[controls]"),
           name: `${el.tagName.toLowerCase()} "${name}"` };
}"""

# Controls on the page that Tab never reached. Table rows are chosen with j / k and the arrow
# keys (the shortcut legend beside the waveform says so), not by Tab.
UNREACHED_JS = """() => {
  const selector = "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), "
    + "select:not([disabled]), textarea:not([disabled]), [tabindex], [role=button], "
    + "[role=tab], audio[controls]";
  const tabbed = window.__tabbed || new Set();
  // An open modal keeps Tab inside it: what lies outside is not for Tab to reach.
  const modal = document.querySelector("[aria-modal='true']");
  const unreached = [];
  for (const el of document.querySelectorAll(selector)) {
    if (el.getAttribute("tabindex") === "-1" || tabbed.has(el)) continue;
    if (modal && !modal.contains(el)) continue;
    if (!el.getClientRects().length || getComputedStyle(el).visibility === "hidden") continue;
    const name = (el.getAttribute("aria-label") || el.textContent || el.dataset.testid
      || el.querySelector("img")?.alt || "").trim().slice(0, 40);
    unreached.push(`${el.tagName.toLowerCase()} "${name}"`);
  }
  window.__tabbed = new Set();
  return unreached;
}"""

# Tabbing scrolls what it focuses into view: the page, the tab strip, tables sideways.
KEEP_SCROLL_JS = """() => {
  window.__tabbed = new Set();
  window.__lastTabbed = null;
  window.__scrolls = [document.scrollingElement, ...document.body.querySelectorAll("*")]
    .filter((el) => el.scrollWidth > el.clientWidth || el.scrollHeight > el.clientHeight)
    .map((el) => [el, el.scrollLeft, el.scrollTop]);
}"""
RESTORE_SCROLL_JS = """() => {
  document.activeElement?.blur();
  for (const [el, left, top] of window.__scrolls) el.scrollTo(left, top);
}"""


@pytest.fixture(scope="module")
def browser(fake_microphone: Path) -> Iterator[Browser]:
    """Chromium without --use-fake-ui-for-media-stream: the microphone is the context's to grant
    or to refuse, as a person does in the browser's permission prompt."""
    args = [a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"]
    with chromium(fake_microphone, args) as browser:
        yield browser


@pytest.fixture(scope="module")
def ui_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A plain service with the tests' small training gate; no board to deploy to."""
    service = Service(
        tmp_path_factory.mktemp("mobile-ui-registry"),
        env=GATE_ENV,
    ).start()
    yield service
    service.stop()


def capture_sidecar(kind: str, peak: float) -> dict[str, Any]:
    """The board's JSON beside a capture: a score that rises to `peak` about 2 s in."""
    hop_seconds = 0.08
    scores = [round(0.02 + (peak - 0.02) * max(0.0, 1 - abs(i * hop_seconds - 2.0) / 0.4), 4)
              for i in range(37)]  # fmt: skip
    return {
        "capture_id": uuid.uuid4().hex, "kind": kind, "model_id": "mobile-0123abcd",
        "threshold": 0.5, "peak_score": peak, "scores": scores, "hop_seconds": hop_seconds,
        "captured_at": "2025-01-02T03:04:05+00:00", "board": "tars-pi",
    }  # fmt: skip


@pytest.fixture(scope="module")
def seeded(ui_service: Service) -> str:
    """A dataset with real clips of each label at the training gate, and two board captures."""
    with ui_service.client() as api:
        created = api.post("/datasets", json={"id": DATASET, "phrase": "computer"})
        assert created.status_code == 201, created.text
        for folder, label in (("wake/computer", "positive"), ("wake/snowboy", "negative")):
            for path in sorted(shared(folder).glob("*.flac"))[:MIN_CLIPS]:
                meta = {"label": label, "speaker": "crowd", "source": "upload"}
                stored = api.post(
                    f"/datasets/{DATASET}/recordings",
                    files={"file": (path.name, path.read_bytes(), "audio/flac")},
                    data={"metadata": json.dumps(meta)},
                )
                assert stored.status_code == 201, stored.text
        for folder, kind, peak in (
            ("wake/computer", "wake", 0.91),
            ("wake/snowboy", "near_miss", 0.42),
        ):
            sent = api.post(
                f"/datasets/{DATASET}/captures",
                files={"file": ("capture.wav", board_wav(folder), "audio/wav")},
                data={"metadata": json.dumps(capture_sidecar(kind, peak))},
            )
            assert sent.status_code == 201, sent.text
    return DATASET


def settle(page: Page) -> None:
    """Layout done, and the waveform redrawn at the new width (wavesurfer waits for the resize
    to settle before it draws)."""
    page.wait_for_timeout(250)
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


def overflow_problems(page: Page) -> list[str]:
    found = page.evaluate(OVERFLOW_JS)
    if found["scrollWidth"] <= found["width"]:
        return []
    lines = [f"the page is {found['scrollWidth']} px wide in a {found['width']} px viewport:"]
    return lines + [f"    {offender}" for offender in found["offenders"]]


def axe_problems(page: Page) -> list[str]:
    if not AXE_JS.is_file():
        pytest.fail(f"{AXE_JS} is missing: `cd web && npm ci` installs it (`make` does)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))
    results = page.evaluate("() => axe.run(document, { resultTypes: ['violations'] })")
    lines = []
    for violation in results["violations"]:
        if violation["impact"] not in SERIOUS:
            continue
        lines.append(
            f"axe {violation['id']} ({violation['impact']}): {violation['help']}"
            f" <{violation['helpUrl']}>"
        )
        for node in violation["nodes"][:6]:
            target = " ".join(t if isinstance(t, str) else " >> ".join(t) for t in node["target"])
            summary = " ".join(node.get("failureSummary", "").split())
            lines.append(f"    {target}: {summary[:300]}")
    return lines


def keyboard_problems(page: Page) -> list[str]:
    """Tab once round the page: every control is reached, and shows a focus ring when it is.
    The page is left as it was found: scroll positions back, no focus."""
    problems = []
    page.evaluate(KEEP_SCROLL_JS)
    for _ in range(400):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_JS)
        if focused is None:
            continue
        if focused["seen"]:
            break
        if not focused["visible"]:
            problems.append(f"no visible focus on {focused['name']}")
    unreached = page.evaluate(UNREACHED_JS)
    problems += [f"Tab never reaches {name}" for name in unreached]
    page.evaluate(RESTORE_SCROLL_JS)
    return problems


def check_page(page: Page, name: str) -> None:
    """The page at both widths: no sideways scroll, keyboard, tap sizes, axe; screenshots."""
    problems = []
    for width, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        page.evaluate("() => window.scrollTo(0, 0)")
        settle(page)
        screenshot(page, f"m-{name}-{width}")
        found = overflow_problems(page) + axe_problems(page) + keyboard_problems(page)
        if width == PHONE:
            found += [f"too small to tap: {t}" for t in page.evaluate(SMALL_TARGETS_JS, MIN_TAP_PX)]
        problems += [f"[{width} px] {line}" for line in found]
    page.set_viewport_size(SIZES["1280"])
    assert not problems, f"the {name} page:\n" + "\n".join(problems)


def open_page(page: Page, path: str) -> None:
    """Straight to a page by its address, so one failing step does not strand the next."""
    page.goto(f"/#{path}")
    if path.startswith("/datasets/"):
        expect(page.get_by_test_id("count-positive")).to_be_visible()


@pytest.fixture(scope="module")
def signed_in(page: Page, seeded: str) -> Page:
    """The shared page, logged in as the operator once the dataset is there."""
    log_in(page)
    expect(page.get_by_test_id("new-dataset-phrase")).to_be_visible()
    return page


def test_login_page(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_test_id("login-username")).to_be_visible()
    check_page(page, "login")


def test_dashboard(signed_in: Page) -> None:
    page = signed_in
    open_page(page, "/")
    card = page.locator(f'[data-testid="dataset-card"][data-dataset-id="{DATASET}"]')
    expect(card.get_by_test_id("card-total-clips")).to_have_text(str(2 * MIN_CLIPS))
    expect(card.get_by_test_id("card-captures")).to_be_visible()
    check_page(page, "dashboard")


def test_recordings_list(signed_in: Page) -> None:
    page = signed_in
    open_page(page, f"/datasets/{DATASET}")
    expect(page.get_by_test_id("recording-row")).to_have_count(2 * MIN_CLIPS)
    check_page(page, "recordings")


def test_reviewing_a_recording(signed_in: Page) -> None:
    page = signed_in
    open_page(page, f"/datasets/{DATASET}")
    page.get_by_test_id("recording-row").first.click()
    expect(page.get_by_test_id("waveform")).to_have_attribute("data-ready", "true")
    check_page(page, "review")


def test_upload_tab_with_a_stored_and_a_refused_file(signed_in: Page) -> None:
    page = signed_in
    open_page(page, f"/datasets/{DATASET}?tab=upload")
    check_page(page, "upload")
    extra = sorted(shared("wake/computer").glob("*.flac"))[MIN_CLIPS]
    page.get_by_test_id("upload-input").set_input_files(
        [
            {"name": extra.name, "mimeType": "audio/flac", "buffer": extra.read_bytes()},
            {"name": "notes.wav", "mimeType": "audio/wav", "buffer": b"not audio at all " * 20},
        ]
    )
    stored = page.locator(f'[data-testid="upload-item"][data-filename="{extra.name}"]')
    expect(stored).to_have_attribute("data-state", "stored")
    refused = page.locator('[data-testid="upload-item"][data-filename="notes.wav"]')
    expect(refused).to_have_attribute("data-state", "error")
    check_page(page, "upload-list")


def test_record_tab(signed_in: Page) -> None:
    page = signed_in
    open_page(page, f"/datasets/{DATASET}?tab=record")
    expect(page.get_by_test_id("record-start")).to_be_enabled()
    check_page(page, "record")


def test_microphone_refused_then_allowed(
    browser: Browser, context: BrowserContext, ui_service: Service, signed_in: Page
) -> None:
    """The browser's permission prompt answered "Block", then "Allow", in a context of its own."""
    refusing = browser.new_context(
        base_url=ui_service.url,
        viewport=SIZES["1280"],
        storage_state=context.storage_state(),  # the operator's session, no microphone yet
    )
    try:
        page = refusing.new_page()
        open_page(page, f"/datasets/{DATASET}?tab=record")
        page.get_by_test_id("record-start").click()
        expect(page.get_by_test_id("record-error")).to_contain_text("refused")
        expect(page.get_by_test_id("record-start")).to_be_enabled()
        check_page(page, "record-refused")

        refusing.grant_permissions(["microphone"], origin=ui_service.url)
        page.get_by_test_id("record-start").click()
        page.wait_for_function(
            "() => Number(document.querySelector('[data-testid=record-level]')"
            "?.getAttribute('data-level')) > 0.01"
        )
        expect(page.get_by_test_id("record-error")).to_have_count(0)
        page.wait_for_timeout(1500)
        page.get_by_test_id("record-stop").click()
        expect(page.get_by_test_id("record-preview")).to_be_visible()
        expect(page.get_by_test_id("record-waveform")).to_have_attribute("data-ready", "true")
        check_page(page, "record-review")
    finally:
        refusing.close()


def test_captures_tab(signed_in: Page) -> None:
    page = signed_in
    open_page(page, f"/datasets/{DATASET}?tab=captures")
    expect(page.get_by_test_id("capture-row")).to_have_count(2)
    expect(page.get_by_test_id("capture-chart")).to_be_visible()
    check_page(page, "captures")


def test_train_modal(signed_in: Page) -> None:
    page = signed_in
    open_page(page, f"/datasets/{DATASET}")
    page.get_by_test_id("train-advanced").click()
    page.get_by_test_id("train-overrides").fill(json.dumps(TINY))
    page.get_by_test_id("train-button").click()
    modal = page.get_by_test_id("training-modal")
    expect(modal).to_be_focused()  # the keyboard starts in the dialog
    status = page.get_by_test_id("training-status")
    expect(status).to_have_text(re.compile("succeeded|failed|cancelled"), timeout=TRAINING_MS)
    expect(status).to_have_text("succeeded")
    try:
        check_page(page, "train")
    finally:  # the page remembers an open modal; the next steps need it closed
        page.keyboard.press("Escape")
    expect(modal).to_have_count(0)


def test_models_tab(signed_in: Page) -> None:
    """The model the training step made, with its details, plots and missed clips open."""
    page = signed_in
    open_page(page, f"/datasets/{DATASET}?tab=models")
    row = page.locator('[data-testid="model-row"][data-status="succeeded"]')
    expect(row).to_be_visible()
    if row.get_by_test_id("model-expand").get_attribute("aria-expanded") != "true":
        row.get_by_test_id("model-expand").click()
    det = page.get_by_test_id("model-det")
    expect(det).to_be_visible()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=det.element_handle()
    )
    check_page(page, "models")


def test_try_it_tab_before_and_after_scoring_a_file(signed_in: Page) -> None:
    page = signed_in
    open_page(page, f"/datasets/{DATASET}?tab=try")
    expect(page.get_by_test_id("try-start")).to_be_visible()
    check_page(page, "try")
    wav = {"name": "computer.wav", "mimeType": "audio/wav", "buffer": board_wav("wake/computer")}
    page.get_by_test_id("try-file").set_input_files(wav)
    expect(page.get_by_test_id("try-chart")).to_be_visible(timeout=30_000)
    check_page(page, "try-result")


def test_negative_bank(signed_in: Page, ui_service: Service) -> None:
    page = signed_in
    speech = sorted(shared("speech/two_speakers").glob("*.flac"))[:1]
    with ui_service.client() as api:
        started = api.post(
            "/negatives/uploads",
            files=[("files", (f.name, f.read_bytes(), "audio/flac")) for f in speech],
            data={"set_id": "kitchen-tv", "kind": "tv"},
        )
        assert started.status_code == 202, started.text
    open_page(page, "/negatives")
    done = page.locator('[data-testid="bank-import"][data-state="done"]')
    expect(done).to_be_visible(timeout=60_000)
    expect(page.locator('[data-testid="bank-set"][data-set-id="kitchen-tv"]')).to_be_visible()
    check_page(page, "negatives")


def test_boards_page(signed_in: Page, ui_service: Service, board: Board) -> None:
    """A board just added, tested: the host key's fingerprint waits to be confirmed."""
    page = signed_in
    with ui_service.client() as api:
        fields = {"name": "tars-pi", "host": "127.0.0.1", "port": board.port,
                  "user": board.user, "generate_key": True}  # fmt: skip
        added = api.post("/boards", json=fields)
        assert added.status_code == 201, added.text
    open_page(page, "/boards")
    tars = page.locator('[data-testid="board"][data-board-name="tars-pi"]')
    tars.get_by_test_id("board-test").click()
    expect(tars.get_by_test_id("board-fingerprint")).to_be_visible()
    check_page(page, "boards")


def test_notifications_panel(signed_in: Page) -> None:
    """The bell's panel, with the training's outcome in it, fits a phone's screen."""
    page = signed_in
    open_page(page, "/")
    page.get_by_role("button", name=re.compile("^Notifications")).click()
    panel = page.get_by_role("dialog", name="Recent notifications")
    expect(panel).to_be_visible()
    check_page(page, "notifications")
    page.set_viewport_size(SIZES[PHONE])
    box = panel.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= SIZES[PHONE]["width"]
    page.set_viewport_size(SIZES["1280"])
    page.keyboard.press("Escape")
    expect(panel).to_have_count(0)
