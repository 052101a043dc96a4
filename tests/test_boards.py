"""Boards kept in the registry: added, checked against a real OpenSSH server, trusted only by
fingerprint, edited and removed, over HTTP and the CLI; their keys never come back out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.board import Board
from tests.conftest import run_cli


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Board]:
    board = Board(tmp_path / "board").start()
    yield board
    board.stop()


def add(api: httpx.Client, board: Board, name: str, **fields: object) -> dict[str, object]:
    body = {"name": name, "host": "127.0.0.1", "port": board.port, "user": board.user,
            "path": str(board.deploy_path), **fields}  # fmt: skip
    response = api.post("/boards", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_board_is_trusted_by_its_fingerprint_then_logged_into_with_a_generated_key(
    api: httpx.Client, board: Board
) -> None:
    added = add(api, board, "kitchen", generate_key=True)
    assert added["host_key"] is None and added["is_default"] is True
    key = added["key"]
    assert isinstance(key, dict) and key["public_key"].startswith("ssh-ed25519 ")
    assert "PRIVATE KEY" not in api.get("/boards").text

    check = api.post(f"/boards/{added['id']}/test").json()
    assert check["reachable"] and check["host_key_status"] == "unpinned" and not check["ok"]
    assert check["host_key"]["fingerprint"] == board.host_fingerprint()
    assert check["login"] is None  # nothing is sent to a board that is not trusted yet

    wrong = api.post(f"/boards/{added['id']}/host-key", json={"fingerprint": "SHA256:not-it"})
    assert wrong.status_code == 409 and board.host_fingerprint() in wrong.json()["detail"]
    assert api.get(f"/boards/{added['id']}").json()["host_key"] is None

    trusted = api.post(
        f"/boards/{added['id']}/host-key", json={"fingerprint": board.host_fingerprint()}
    )
    assert trusted.status_code == 200, trusted.text
    assert trusted.json()["host_key"]["fingerprint"] == board.host_fingerprint()

    refused = api.post(f"/boards/{added['id']}/test").json()
    assert refused["host_key_status"] == "pinned" and refused["login"] is False
    assert "authorized_keys" in refused["message"]

    board.authorize(key["public_key"])
    ready = api.post(f"/boards/{added['id']}/test").json()
    assert ready["ok"] and ready["login"] and ready["path_writable"], ready["message"]
    assert (board.deploy_path / "incoming").is_dir()

    target = api.get("/deploy/target").json()
    assert target["board_id"] == added["id"] and f"127.0.0.1:{board.port}" in target["target"]


def test_a_pasted_key_is_kept_but_never_sent_back_and_bad_input_says_what_is_accepted(
    api: httpx.Client, board: Board
) -> None:
    secret = board.client_key.read_text()
    secret_line = secret.splitlines()[1]
    added = add(api, board, "hall", private_key=secret)
    for response in (api.get("/boards"), api.get(f"/boards/{added['id']}")):
        assert secret_line not in response.text and "PRIVATE KEY" not in response.text
    key = added["key"]
    assert isinstance(key, dict)
    assert key["public_key"].split()[:2] == Path(f"{board.client_key}.pub").read_text().split()[:2]

    garbled = api.post("/boards", json={"name": "x", "host": "h", "user": "u",
                                         "private_key": "not a key"})  # fmt: skip
    assert garbled.status_code == 422 and "OpenSSH or PEM" in garbled.json()["detail"]
    assert "not a key" not in garbled.text
    keyless = api.post("/boards", json={"name": "x", "host": "h", "user": "u"})
    assert keyless.status_code == 422 and "generate_key" in keyless.json()["detail"]
    taken = api.post("/boards", json={"name": "hall", "host": "h", "user": "u",
                                       "generate_key": True})  # fmt: skip
    assert taken.status_code == 409
    relative = {"name": "y", "host": "h", "user": "u", "path": "dir", "generate_key": True}
    bad_path = api.post("/boards", json=relative)
    assert bad_path.status_code == 422 and "path" in bad_path.text

    fingerprint = board.host_fingerprint()
    api.post(f"/boards/{added['id']}/host-key", json={"fingerprint": fingerprint})
    renamed = api.patch(f"/boards/{added['id']}", json={"name": "hallway", "post_command": None})
    assert renamed.status_code == 200 and renamed.json()["host_key"]["fingerprint"] == fingerprint
    moved = api.patch(f"/boards/{added['id']}", json={"port": board.port + 1})
    assert moved.json()["host_key"] is None  # another address: its key is checked again
    assert api.delete(f"/boards/{added['id']}").status_code == 204
    assert api.get(f"/boards/{added['id']}").status_code == 404


def test_the_default_moves_on_when_the_default_board_is_removed(
    api: httpx.Client, board: Board
) -> None:
    for board_id in [b["id"] for b in api.get("/boards").json()]:
        api.delete(f"/boards/{board_id}")
    first = add(api, board, "first", generate_key=True)
    second = add(api, board, "second", generate_key=True)
    assert first["is_default"] and not second["is_default"]
    made = api.post(f"/boards/{second['id']}/default").json()
    assert made["is_default"] and not api.get(f"/boards/{first['id']}").json()["is_default"]
    api.delete(f"/boards/{second['id']}")
    assert api.get(f"/boards/{first['id']}").json()["is_default"]


def test_the_cli_adds_trusts_tests_and_lists_boards(tmp_path: Path, board: Board) -> None:
    data = tmp_path / "registry"
    added = run_cli(data, "board", "add", "tars", "--host", "127.0.0.1", "--port",
                    str(board.port), "--user", board.user, "--path", str(board.deploy_path),
                    "--key", str(board.client_key))  # fmt: skip
    assert added.returncode == 0, added.stderr
    secret_line = board.client_key.read_text().splitlines()[1]
    assert secret_line not in added.stdout + added.stderr

    untrusted = run_cli(data, "board", "test", "tars")
    assert untrusted.returncode == 1 and board.host_fingerprint() in untrusted.stdout

    trusted = run_cli(data, "board", "trust", "tars", "--fingerprint", board.host_fingerprint())
    assert trusted.returncode == 0, trusted.stderr
    ready = run_cli(data, "board", "test", "tars")
    assert ready.returncode == 0 and "Ready" in ready.stdout, ready.stdout + ready.stderr

    listed = run_cli(data, "board", "list")
    assert "tars (default)" in listed.stdout and board.host_fingerprint() in listed.stdout
    assert secret_line not in listed.stdout
    missing = run_cli(data, "board", "remove", "nope")
    assert missing.returncode == 1 and "No board 'nope'" in missing.stderr
    assert run_cli(data, "board", "remove", "tars").returncode == 0
    assert "no boards" in run_cli(data, "board", "list").stderr


def test_a_board_offering_another_host_key_than_the_trusted_one_is_named_a_mismatch(
    tmp_path: Path, board: Board
) -> None:
    impostor = Board(tmp_path / "impostor").start()
    try:
        # The DEPLOY_* board trusts the impostor's key for the real board's address.
        line = impostor.known_hosts.read_text().replace(f"]:{impostor.port} ", f"]:{board.port} ")
        board.known_hosts.write_text(line)
        check = run_cli(tmp_path / "registry", "board", "test", "env", env=board.env())
        assert check.returncode == 1
        assert "(mismatch)" in check.stdout and "someone in between" in check.stdout
    finally:
        impostor.stop()
