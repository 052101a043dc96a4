"""A real service and Debian's headless Chromium, driven by Playwright (no browser download)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.board import Board
from tests.conftest import ADMIN_PASSWORD, Service, shared

CHROMIUM = Path(os.environ.get("WAKETRAIN_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"
# Closed network: no background traffic, no component updates, no sandbox as root in CI.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
MIN_CLIPS = 8  # the service's training gate in these tests (50 by default)
GATE_ENV = {"WAKETRAIN_MIN_POSITIVE_CLIPS": str(MIN_CLIPS),
            "WAKETRAIN_MIN_NEGATIVE_CLIPS": str(MIN_CLIPS)}  # fmt: skip
# Playwright waits 5 s by default; a 2-core CI machine running the worker beside Chromium can
# take longer to render. Waiting longer costs nothing when the page is right.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def fake_microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real "computer" recording between stretches of silence, as a PCM16 WAV for Chromium."""
    audio, rate = sf.read(str(next(iter(sorted(shared("wake/computer").glob("*.flac"))))))
    pad = np.zeros(rate, dtype=audio.dtype)
    path = tmp_path_factory.mktemp("microphone") / "microphone.wav"
    sf.write(str(path), np.concatenate([pad, audio, pad]), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    """A real sshd on loopback as the board "Apply training to TARS" ships to."""
    board = Board(tmp_path_factory.mktemp("board")).start()
    yield board
    board.stop()


@pytest.fixture(scope="module")
def ui_service(tmp_path_factory: pytest.TempPathFactory, board: Board) -> Iterator[Service]:
    """`waketrain serve` with its embedded worker, a small training gate, and a board."""
    service = Service(
        tmp_path_factory.mktemp("ui-registry"),
        env={**GATE_ENV, **board.env(DEPLOY_POST_COMMAND="echo restarted >> post.log")},
    ).start()
    yield service
    service.stop()


@contextmanager
def chromium(fake_microphone: Path, args: list[str]) -> Iterator[Browser]:
    """Debian's Chromium with `args`, its microphone playing `fake_microphone`."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*args, f"--use-file-for-fake-audio-capture={fake_microphone}"],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def browser(fake_microphone: Path) -> Iterator[Browser]:
    with chromium(fake_microphone, CHROMIUM_ARGS) as browser:
        yield browser


@pytest.fixture(scope="module")
def context(browser: Browser, ui_service: Service) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=ui_service.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    context.grant_permissions(["microphone"], origin=ui_service.url)
    yield context
    context.close()


@pytest.fixture(scope="module")
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    yield page
    page.close()


def board_wav(folder: str, index: int = 0) -> bytes:
    """A real recording as the board saves a capture: 16 kHz mono PCM16 WAV, 3 s at most."""
    audio, rate = sf.read(str(sorted(shared(folder).glob("*.flac"))[index]), dtype="float32")
    assert rate == 16_000 and audio.ndim == 1, f"{folder} should hold 16 kHz mono clips"
    wav = io.BytesIO()
    sf.write(wav, audio[: 3 * rate], rate, format="WAV", subtype="PCM_16")
    return wav.getvalue()


def log_in(page: Page) -> None:
    """The operator logs in on the login form the service's page opens with."""
    page.goto("/")
    page.get_by_test_id("login-username").fill("admin")
    page.get_by_test_id("login-password").fill(ADMIN_PASSWORD)
    page.get_by_test_id("login-submit").click()


def screenshot(page: Page, name: str) -> None:
    """Saved for people to review what the UI looks like (the folder is not committed)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
