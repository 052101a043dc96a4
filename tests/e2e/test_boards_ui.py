"""Adding a board in headless Chromium against a real service, a real sshd as the board.

The operator adds the board with a key the service generates, sees the host key's
fingerprint (the same `ssh-keygen -lf` prints on the board), trusts it, puts the public key
on the board, and the next test says the board is ready; then edits and removes it. The
steps share one page and run in order.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.board import Board
from tests.conftest import Service
from tests.e2e.conftest import log_in, screenshot

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def ui_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service with no DEPLOY_* settings: every board comes from the Boards page."""
    service = Service(tmp_path_factory.mktemp("boards-registry")).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def signed_in(page: Page) -> Page:
    log_in(page)
    expect(page.get_by_test_id("new-dataset-phrase")).to_be_visible()
    return page


def card(page: Page, name: str) -> Locator:
    return page.locator(f'[data-testid="board"][data-board-name="{name}"]')


def test_the_boards_page_starts_empty(signed_in: Page) -> None:
    page = signed_in
    page.get_by_test_id("nav-boards").click()
    expect(page.get_by_text("No board yet")).to_be_visible()
    screenshot(page, "boards-empty-1280")


def test_adding_a_board_shows_its_fingerprint_to_confirm(signed_in: Page, board: Board) -> None:
    page = signed_in
    page.get_by_test_id("board-add").click()
    form = page.get_by_test_id("board-form")
    form.get_by_test_id("board-name").fill("kitchen")
    form.get_by_test_id("board-host").fill("127.0.0.1")
    form.get_by_test_id("board-port").fill(str(board.port))
    form.get_by_test_id("board-user").fill(board.user)
    form.get_by_test_id("board-path").fill(str(board.deploy_path))
    form.get_by_test_id("board-key-generate").check()
    form.get_by_test_id("board-save").click()

    kitchen = card(page, "kitchen")
    expect(kitchen).to_be_visible()
    # Saved, then tested at once: the board answers with a key nobody trusted yet.
    expect(kitchen.get_by_test_id("board-fingerprint")).to_have_text(board.host_fingerprint())
    expect(kitchen.get_by_test_id("board-public-key")).to_contain_text("ssh-ed25519 ")
    screenshot(page, "boards-fingerprint-1280")
    page.set_viewport_size(PHONE)
    screenshot(page, "boards-fingerprint-390")
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the Boards page scrolls sideways at 390 px: {width}"
    page.set_viewport_size(DESKTOP)


def test_trusting_the_key_then_authorizing_ours_makes_the_board_ready(
    signed_in: Page, board: Board
) -> None:
    page = signed_in
    kitchen = card(page, "kitchen")
    kitchen.get_by_test_id("board-trust").click()
    check = kitchen.get_by_test_id("board-check")
    # Trusted; our key is not on the board yet, so the login is refused and says why.
    expect(check).to_contain_text("authorized_keys")
    expect(kitchen.get_by_test_id("board-fingerprint")).to_have_count(0)

    board.authorize(kitchen.get_by_test_id("board-public-key").text_content() or "")
    kitchen.get_by_test_id("board-test").click()
    expect(check).to_contain_text("Ready")
    assert (board.deploy_path / "incoming").is_dir()
    screenshot(page, "boards-ready-1280")


def test_a_board_is_edited_and_removed(signed_in: Page, ui_service: Service) -> None:
    page = signed_in
    kitchen = card(page, "kitchen")
    kitchen.get_by_test_id("board-edit").click()
    form = page.get_by_test_id("board-form")
    expect(form.get_by_test_id("board-private-key")).to_have_count(0)  # never shown back
    form.get_by_test_id("board-post-command").fill("echo restarted >> post.log")
    form.get_by_test_id("board-save").click()
    with ui_service.client() as api:
        [stored] = api.get("/boards").json()
        assert stored["post_command"] == "echo restarted >> post.log"
        assert stored["host_key"] is not None  # same host and port: still trusted
    kitchen.get_by_test_id("board-remove").click()
    kitchen.get_by_test_id("board-remove-confirm").click()
    expect(kitchen).to_have_count(0)
    expect(page.get_by_text("No board yet")).to_be_visible()
