"""The command-line door: each command parses its input, calls the core, prints the result.

This module assembles the `waketrain` app from one module per command group, and is the one
place where the core's errors become a message on stderr and exit code 1.
"""

from __future__ import annotations

from typing import Any

import typer

from waketrain.store.errors import WaketrainError

from . import backups, boards, captures, datasets, deploy, detect, negatives, service, training

# What the core raises on purpose: its own errors, and the ValueError (pydantic's validation
# errors, refused audio, bad detector options) and OSError (missing files, devices, sockets)
# of the parts below it that know nothing of WaketrainError, such as the board's runtime.
EXPECTED_ERRORS = (WaketrainError, ValueError, OSError)


class WaketrainApp(typer.Typer):
    """A typer app whose commands may raise the core's errors: each is shown as one line."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except EXPECTED_ERRORS as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise SystemExit(1) from None


app = WaketrainApp(help="waketrain: self-hosted wake word training service.", no_args_is_help=True)
# Commands without a group join the top level, listed in `--help` in this order.
for commands in (service, training, deploy, backups, detect):
    app.add_typer(commands.app)
app.add_typer(datasets.app, name="dataset")
app.add_typer(boards.app, name="board")
app.add_typer(captures.token_app, name="token")
app.add_typer(negatives.app, name="negatives")
app.add_typer(captures.app, name="capture")
