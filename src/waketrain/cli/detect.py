"""`waketrain detect`: the board's detector (its logic is in runtime/run_detector.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()


@app.command()
def detect(
    model: Annotated[
        Path,
        typer.Option(
            envvar="STT_WAKE_MODEL_PATH",
            help="wake_model.onnx with metadata.json beside it; a symlink is followed anew "
            "on every chunk, so a deploy's swap is picked up without a restart.",
        ),
    ] = Path("/models/wake_model.onnx"),
    source: Annotated[
        str, typer.Option(help="file:PATH, stdin (raw PCM16), socket[:PATH] or alsa[:DEVICE].")
    ] = "alsa",
    mqtt: Annotated[
        str | None,
        typer.Option(envvar="MQTT_URL", help="mqtt://[user:pass@]host[:port]; else stdout."),
    ] = None,
    tars: Annotated[
        bool, typer.Option("--tars", help="Also publish TARS's wake/event envelope.")
    ] = False,
    threshold: Annotated[
        float | None, typer.Option(help="Override the model's threshold (its metadata's).")
    ] = None,
    wyoming: Annotated[
        str | None,
        typer.Option(help="Serve Wyoming wake detection instead (e.g. tcp://0.0.0.0:10400)."),
    ] = None,
    capture_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="WAKETRAIN_CAPTURE_DIR",
            help="Save each detection and near miss here (WAV + JSON sidecar) for review, "
            "e.g. /var/lib/waketrain/captures; off unless given.",
        ),
    ] = None,
    near_miss_fraction: Annotated[
        float, typer.Option(help="A near miss peaks at this share of the threshold or above.")
    ] = 0.6,
    capture_max_mb: Annotated[
        float, typer.Option(help="Spool size cap; the oldest captures are deleted first.")
    ] = 50.0,
    board_name: Annotated[
        str | None, typer.Option(help="Board name in each capture (default: the hostname).")
    ] = None,
    room_audio_every: Annotated[
        float,
        typer.Option(
            help="Minutes between stretches of room audio sent back for the negative bank "
            "(only stretches with no detection or near miss); 0: none. Needs --capture-dir."
        ),
    ] = 0.0,
    room_audio_seconds: Annotated[
        float, typer.Option(help="Length of each stretch of room audio, in seconds.")
    ] = 30.0,
    push_url: Annotated[
        str | None,
        typer.Option(help="Push captures to this service (http:// or https://) in the background."),
    ] = None,
    push_dataset: Annotated[
        str | None, typer.Option(help="Dataset the pushed captures go to.")
    ] = None,
    push_token_file: Annotated[
        Path | None,
        typer.Option(help="File holding the board token (else env WAKETRAIN_BOARD_TOKEN)."),
    ] = None,
    push_every: Annotated[float, typer.Option(help="Seconds between pushes.")] = 300.0,
) -> None:
    """Listen for the wake phrase and publish each detection (the board's detector)."""
    from waketrain.runtime.run_detector import BOARD_TOKEN_ENV, DetectorOptions, listen

    options = DetectorOptions(
        model=model,
        source=source,
        mqtt=mqtt,
        tars=tars,
        threshold=threshold,
        wyoming=wyoming,
        capture_dir=capture_dir,
        near_miss_fraction=near_miss_fraction,
        capture_max_mb=capture_max_mb,
        board_name=board_name,
        room_audio_every=room_audio_every,
        room_audio_seconds=room_audio_seconds,
        push_url=push_url,
        push_dataset=push_dataset,
        push_token_file=push_token_file,
        push_token_from_env=os.environ.get(BOARD_TOKEN_ENV),
        push_every=push_every,
    )
    listen(options, say=lambda line: typer.echo(line, err=True))
