"""`waketrain negatives`: the negative bank every job trains and calibrates on."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from waketrain.cli.startup import open_registry

app = typer.Typer(
    help="The negative bank: hours of audio that is never the wake phrase, for every job.",
    no_args_is_help=True,
)


@app.command("add")
def negatives_add(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Folders or files: audio of any length, or openWakeWord .npy features."
        ),
    ],
    set_id: Annotated[
        str | None, typer.Option("--set", help="Set id (default: the first path's name).")
    ] = None,
    kind: Annotated[str, typer.Option(help="speech, music, tv, room, noise or mixed.")] = "mixed",
) -> None:
    """Add audio to the bank; features are computed once. Run it again to resume."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from waketrain.training.negative_bank import (
        AddProgress,
        NegativeBank,
        default_set_id,
    )

    bank_id = set_id or default_set_id(paths[0])
    bank = NegativeBank(open_registry().layout)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn(
        "{task.percentage:>3.0f}%"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(f"adding to {bank_id}", total=None)

        def show(update: AddProgress) -> None:
            bar.update(
                task,
                total=update.total_seconds or None,
                completed=update.done_seconds,
                description=f"{Path(update.file).name}",
            )

        report = bank.add(paths, bank_id, kind, show)  # type: ignore[arg-type]
    for line in report.refused:
        typer.secho(f"refused {line}", fg=typer.colors.YELLOW, err=True)
    for line in report.already_in_bank:
        typer.echo(f"already in the bank: {line}", err=True)
    total = sum(s.hours for s in bank.sets() if s.id == bank_id)
    typer.echo(
        f"added {len(report.added)} files ({report.hours_added:.2f} h) to {bank_id}; "
        f"{len(report.already_in_bank)} already in the bank, {len(report.refused)} refused; "
        f"{bank_id} now holds {total:.2f} h"
    )


@app.command("list")
def negatives_list(
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The bank's sets: kind, hours, files."""
    from waketrain.training.negative_bank import NegativeBank

    sets = NegativeBank(open_registry().layout).sets()
    if json_out:
        typer.echo(json.dumps([s.model_dump(mode="json") | {"hours": s.hours} for s in sets]))
        return
    if not sets:
        typer.echo("the negative bank is empty: waketrain negatives add FOLDER --kind speech")
        return
    typer.echo(f"{'set':<28} {'kind':<8} {'hours':>7} {'files':>6}")
    for s in sets:
        typer.echo(f"{s.id:<28} {s.kind:<8} {s.hours:>7.2f} {len(s.sources):>6}")
    typer.echo(f"{'total':<28} {'':<8} {sum(s.hours for s in sets):>7.2f}")


@app.command("remove")
def negatives_remove(set_id: Annotated[str, typer.Argument(help="Set id.")]) -> None:
    """Remove a set from the bank (jobs already trained keep their figures)."""
    from waketrain.training.negative_bank import NegativeBank

    removed = NegativeBank(open_registry().layout).remove(set_id)
    typer.echo(f"removed {removed.id} ({removed.hours:.2f} h, {len(removed.sources)} files)")
