"""The closed loop: `capture` push/pull/list/review, and `token` (board tokens among them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from waketrain.cli.startup import open_registry
from waketrain.store.errors import InvalidInput

app = typer.Typer(
    help="Captures the detector saved: push or pull them, list and review them.",
    no_args_is_help=True,
)
token_app = typer.Typer(help="API tokens for scripts.", no_args_is_help=True)


@app.command("push")
def capture_push(
    url: Annotated[str, typer.Option(help="The service, e.g. http://jetson:8000.")],
    dataset: Annotated[str, typer.Option(help="Dataset the captures go to.")],
    spool: Annotated[
        Path | None,
        typer.Option(
            envvar="WAKETRAIN_CAPTURE_DIR",
            help="The detector's capture folder (default /var/lib/waketrain/captures).",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(help="File holding the board token (else env WAKETRAIN_BOARD_TOKEN)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each upload.")] = 30.0,
) -> None:
    """Send the board's saved captures to the service; each leaves the spool once received."""
    from waketrain.runtime.capture import DEFAULT_SPOOL_DIR
    from waketrain.runtime.capture_push import push_spool
    from waketrain.runtime.run_detector import BOARD_TOKEN_ENV, board_token, service_url

    service = service_url(url)
    token = board_token(token_file, os.environ.get(BOARD_TOKEN_ENV))
    report = push_spool(spool or DEFAULT_SPOOL_DIR, service, dataset, token, timeout)
    typer.echo(report.summary())
    if report.stopped:
        raise typer.Exit(code=1)


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="User the token acts as.")] = "admin",
    name: Annotated[str | None, typer.Option(help="Label for the token.")] = None,
    captures_for: Annotated[
        str | None,
        typer.Option(help="A board token: it may only add captures to this dataset."),
    ] = None,
    days: Annotated[
        float | None, typer.Option(help="Expire after this many days (default: never).")
    ] = None,
) -> None:
    """Print a new bearer token (shown once; only its hash is stored)."""
    from waketrain.store.accounts import issue_token

    kind = "board" if captures_for else "api"
    issued = issue_token(open_registry(), user, kind, name, captures_for=captures_for, days=days)
    typer.echo(issued.token)


@app.command("list")
def captures_list(
    dataset: Annotated[str, typer.Option(help="Dataset the captures belong to.")],
    status: Annotated[
        str, typer.Option(help="unreviewed, reviewed, discarded or all.")
    ] = "unreviewed",
) -> None:
    """One line per capture: id, what the detector thought, peak score, board, when."""
    from waketrain.store.captures import list_captures

    if status not in ("unreviewed", "reviewed", "discarded", "all"):
        raise InvalidInput(f"Unknown status {status!r}: unreviewed, reviewed, discarded, all.")
    page = list_captures(open_registry(), dataset, status, limit=500)  # type: ignore[arg-type]
    for c in page.items:
        verdict = c.verdict or c.status
        typer.echo(f"{c.id}  {c.kind:9}  peak {c.peak_score:.3f}  {verdict:10}  {c.board}  "
                   f"{c.captured_at:%Y-%m-%d %H:%M:%S}")  # fmt: skip
    typer.echo(f"{page.total} {status} capture(s)")


@app.command("review")
def captures_review(
    capture_id: Annotated[str, typer.Argument(help="The capture's id.")],
    verdict: Annotated[
        str, typer.Option(help="positive (a real wake), negative (a false wake) or discard.")
    ],
    actor: Annotated[str, typer.Option(help="Who reviews, for the audit trail.")] = "admin",
) -> None:
    """Say what a capture was; positive and negative ones join the dataset as clips."""
    from waketrain.store.captures import review_capture

    if verdict not in ("positive", "negative", "discard"):
        raise InvalidInput(f"Unknown verdict {verdict!r}: positive, negative or discard.")
    reviewed = review_capture(open_registry(), capture_id, verdict, actor)  # type: ignore[arg-type]
    typer.echo(f"{reviewed.id}: {reviewed.status}" + (f", clip {reviewed.clip_id}"
                                                      if reviewed.clip_id else ""))  # fmt: skip


@app.command("pull")
def capture_pull(
    dataset: Annotated[str, typer.Option(help="Dataset the captures are for.")],
    spool: Annotated[
        str | None, typer.Option(help="Spool folder on the board (default DEPLOY_CAPTURE_DIR).")
    ] = None,
    board: Annotated[
        str | None, typer.Option(help="Board name or id (default: the default board).")
    ] = None,
) -> None:
    """Fetch a board's capture spool over SSH, for boards that cannot reach the service;
    each capture leaves the board only once it is stored here."""
    import asyncio

    from waketrain.deploy.capture_pull import pull_captures

    report = asyncio.run(pull_captures(open_registry(), dataset, spool, board))
    typer.echo(report.summary())
    for capture_id, reason in report.rejected:
        typer.echo(f"refused {capture_id}: {reason}", err=True)
