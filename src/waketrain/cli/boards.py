"""`waketrain board`: the boards models are deployed to, as on the web UI's Boards page."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import SecretStr

from waketrain.cli.startup import open_registry

if TYPE_CHECKING:
    from waketrain.deploy.boards import BoardFields, BoardRecord

app = typer.Typer(
    help="Boards: where `deploy` ships models over SSH, and how each is trusted.",
    no_args_is_help=True,
)

BoardArg = Annotated[str, typer.Argument(help="The board's name or id.")]
HostOpt = Annotated[str | None, typer.Option(help="SSH host name or address of the board.")]
UserOpt = Annotated[str | None, typer.Option(help="SSH user on the board.")]
PortOpt = Annotated[int | None, typer.Option(help="SSH port (default DEPLOY_PORT).")]
PathOpt = Annotated[
    str | None, typer.Option(help="Folder on the board for releases (default DEPLOY_PATH).")
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(help="detector (this project's) or tars-compose (default DEPLOY_TARGET)."),
]
PostOpt = Annotated[
    str | None, typer.Option(help="Command run after the swap, e.g. restart the wake service.")
]
HealthOpt = Annotated[str | None, typer.Option(help="Check run after it; failing rolls back.")]
KeepOpt = Annotated[int | None, typer.Option(help="Releases kept on the board (at least 2).")]
KeyOpt = Annotated[
    Path | None,
    typer.Option(help="Private key file to log in with (kept in the registry, never shown)."),
]
GenerateOpt = Annotated[
    bool, typer.Option("--generate-key", help="Make a new key; prints its public line.")
]


def _actor() -> str:
    return os.environ.get("USER", "cli")


def _fields(**given: object) -> BoardFields:
    from waketrain.deploy.boards import BoardFields

    key = given.pop("key")
    values = {name: value for name, value in given.items() if value not in (None, False)}
    if isinstance(key, Path):
        values["private_key"] = SecretStr(key.read_text())
    return BoardFields.model_validate(values)


def _show(board: BoardRecord) -> None:
    trusted = board.host_key.fingerprint if board.host_key else "not trusted yet"
    typer.echo(f"{board.name}{' (default)' if board.is_default else ''}  id {board.id}")
    typer.echo(f"  {board.user}@{board.host}:{board.port}:{board.path}  {board.profile}")
    typer.echo(f"  host key: {trusted}")
    if board.key is not None:
        typer.echo(f"  client key: {board.key.fingerprint}; for ~/.ssh/authorized_keys there:")
        typer.echo(f"  {board.key.public_key}")


@app.command("list")
def list_() -> None:
    """Every board, the default marked; the DEPLOY_* board last when it is set."""
    from waketrain.deploy.boards import list_boards

    boards = list_boards(open_registry())
    if not boards:
        typer.echo("no boards: add one with `waketrain board add`", err=True)
    for board in boards:
        _show(board)


@app.command()
def show(board: BoardArg) -> None:
    """One board, with the public key to put on it."""
    from waketrain.deploy.boards import get_board

    _show(get_board(open_registry(), board))


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="A name for the board, e.g. tars-kitchen.")],
    host: HostOpt = None,
    user: UserOpt = None,
    port: PortOpt = None,
    path: PathOpt = None,
    profile: ProfileOpt = None,
    post_command: PostOpt = None,
    health_command: HealthOpt = None,
    keep_releases: KeepOpt = None,
    key: KeyOpt = None,
    generate_key: GenerateOpt = False,
) -> None:
    """Add a board; then `waketrain board test NAME` shows its host key to trust."""
    from waketrain.deploy.boards import add_board

    fields = _fields(name=name, host=host, user=user, port=port, path=path, profile=profile,
                     post_command=post_command, health_command=health_command,
                     keep_releases=keep_releases, key=key, generate_key=generate_key)  # fmt: skip
    _show(add_board(open_registry(), fields, _actor()))


@app.command()
def edit(
    board: BoardArg,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    host: HostOpt = None,
    user: UserOpt = None,
    port: PortOpt = None,
    path: PathOpt = None,
    profile: ProfileOpt = None,
    post_command: PostOpt = None,
    health_command: HealthOpt = None,
    keep_releases: KeepOpt = None,
    key: KeyOpt = None,
    generate_key: GenerateOpt = False,
) -> None:
    """Change what is given; a new host or port must have its host key trusted again."""
    from waketrain.deploy.boards import edit_board

    fields = _fields(name=name, host=host, user=user, port=port, path=path, profile=profile,
                     post_command=post_command, health_command=health_command,
                     keep_releases=keep_releases, key=key, generate_key=generate_key)  # fmt: skip
    _show(edit_board(open_registry(), board, fields, _actor()))


@app.command()
def remove(board: BoardArg) -> None:
    """Forget a board (its releases stay on it)."""
    from waketrain.deploy.boards import remove_board

    remove_board(open_registry(), board, _actor())
    typer.echo(f"removed {board}")


@app.command()
def default(board: BoardArg) -> None:
    """Make this board the one `deploy` and Apply use unless told otherwise."""
    from waketrain.deploy.boards import make_default

    _show(make_default(open_registry(), board, _actor()))


@app.command()
def test(board: BoardArg) -> None:
    """Reach the board: host key, login, and its folder; exits 1 unless a deploy would work."""
    from waketrain.deploy.boards import check_board

    check = check_board(open_registry(), board)
    if check.host_key is not None:
        typer.echo(f"host key {check.host_key.fingerprint} ({check.host_key_status})")
    typer.echo(check.message)
    if not check.ok:
        raise typer.Exit(code=1)


@app.command()
def trust(
    board: Annotated[
        str | None, typer.Argument(help="The board's name or id (default: the default board).")
    ] = None,
    fingerprint: Annotated[
        str | None,
        typer.Option(help="The fingerprint you compared (SHA256:...); asked for otherwise."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Trust the key without asking.")] = False,
) -> None:
    """Trust the board's SSH host key once you have compared its fingerprint with the board's."""
    from waketrain.deploy.boards import default_board, offered_host_key, trust_host_key

    registry = open_registry()
    ref = board or default_board(registry).id
    if fingerprint is None:
        offered = offered_host_key(registry, ref).fingerprint
        if not yes:
            typer.confirm(
                f"The board offers host key {offered}. Compare it with the board's own "
                "(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` there). Trust it?",
                abort=True,
            )
        fingerprint = offered
    trusted = trust_host_key(registry, ref, fingerprint, _actor())
    typer.echo(f"trusted {trusted.host}:{trusted.port} {fingerprint} for {trusted.name}")
