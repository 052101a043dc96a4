"""Getting a model onto a board: `deploy` over SSH, `export` for a USB stick, `pin-host-key`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from waketrain.cli.startup import open_registry

app = typer.Typer()


@app.command()
def deploy(
    job: Annotated[
        str | None, typer.Option(help="Job whose model to ship (default: the current model).")
    ] = None,
    artifact: Annotated[
        str | None,
        typer.Option(help="Or: jobs/<job_id>/export, or transfers/<bundle>.tar.gz to ship again."),
    ] = None,
    board: Annotated[
        str | None, typer.Option(help="Board name or id (default: the default board).")
    ] = None,
) -> None:
    """Ship a model to a board over SSH and apply it there; rolls back if it fails.

    Runs here, listed in the UI like any deployment and cancellable there until the board
    applies it.
    """
    from waketrain.deploy.boards import get_board
    from waketrain.deploy.runner import deploy_here

    actor = os.environ.get("USER", "cli")
    registry = open_registry()
    board_id = get_board(registry, board).id if board else None
    result = deploy_here(
        registry, job, actor, artifact, on_log=lambda s: typer.echo(s, err=True), board_id=board_id
    )
    typer.echo(f"{result.status} on {result.target}")
    if result.status != "succeeded":
        raise typer.Exit(code=1)


@app.command()
def export(
    out: Annotated[Path, typer.Option(help="Folder to write to, e.g. a mounted USB stick.")],
    job: Annotated[
        str | None, typer.Option(help="Job whose model to export (default: the current model).")
    ] = None,
) -> None:
    """Write a model's board bundle and its .sha256 to a folder, for a board without SSH."""
    from waketrain.deploy.bundle import export_bundle

    bundle = export_bundle(open_registry(), job, out)
    typer.echo(bundle.path)
    typer.echo(
        f"on the board: tar -xzf {bundle.path.name} deploy_hotword.sh && "
        f"DEPLOY_PATH=/opt/waketrain sh deploy_hotword.sh {bundle.path.name}",
        err=True,
    )


@app.command("pin-host-key")
def pin_host_key(
    yes: Annotated[bool, typer.Option("--yes", help="Trust the key without asking.")] = False,
) -> None:
    """Trust the default board's SSH host key, after showing its fingerprint."""
    from waketrain.cli.boards import trust

    trust(board=None, fingerprint=None, yes=yes)
