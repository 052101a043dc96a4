"""`waketrain dataset`: create, list, show and import datasets, and their identical clips."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from waketrain.cli.startup import open_registry

app = typer.Typer(
    help="Create, list, show and import datasets; find identical clips.", no_args_is_help=True
)


@app.command("create")
def dataset_create(
    dataset_id: Annotated[str, typer.Argument(help="Slug, e.g. tars-default.")],
    phrase: Annotated[str, typer.Option(help="The wake phrase, as spoken.")],
    description: Annotated[str | None, typer.Option(help="Free text.")] = None,
) -> None:
    """Create a dataset."""
    from waketrain.store.datasets import DatasetCreate, create_dataset

    spec = DatasetCreate(id=dataset_id, phrase=phrase, description=description)
    summary = create_dataset(open_registry(), spec, actor="cli")
    typer.echo(f"created dataset {summary.id} (phrase: {summary.phrase!r})")


@app.command("list")
def dataset_list() -> None:
    """One line per dataset: clips per label and minutes."""
    from waketrain.store.datasets import list_datasets

    for s in list_datasets(open_registry()):
        c = s.clip_counts
        typer.echo(
            f"{s.id:24} {s.phrase!r:20} positive={c.positive} negative={c.negative} "
            f"noise={c.noise} minutes={s.total_minutes:.2f}"
        )


@app.command("show")
def dataset_show(dataset_id: str) -> None:
    """The dataset's health summary as JSON."""
    from waketrain.store.health import dataset_summary

    summary = dataset_summary(open_registry(), dataset_id)
    typer.echo(json.dumps(summary.model_dump(mode="json"), indent=2))


@app.command("import")
def dataset_import(
    folder: Annotated[Path, typer.Argument(help="Folder of audio files (searched recursively).")],
    dataset: Annotated[str, typer.Option(help="Dataset id.")],
    label: Annotated[str, typer.Option(help="positive, negative or noise.")],
    speaker: Annotated[str | None, typer.Option(help="Speaker tag for every clip.")] = None,
    analyze: Annotated[
        bool, typer.Option(help="Measure quality now (else a running service does it).")
    ] = True,
) -> None:
    """Import every audio file of a folder; refused files are listed with the reason."""
    from waketrain.store.analysis import (
        analysis_pool,
        analyze_pending_clips,
        measure_in_processes,
    )
    from waketrain.store.clips import ClipMetadata, import_directory

    metadata = ClipMetadata(label=label, speaker=speaker, source="import")  # type: ignore[arg-type]
    registry = open_registry()
    report = import_directory(registry, folder, dataset, metadata, actor="cli")
    if analyze:
        with analysis_pool(workers=os.cpu_count() or 1) as pool:
            analyze_pending_clips(registry, measure_in_processes(pool))
    for name, reason in report.rejected:
        typer.secho(f"refused {name}: {reason}", fg=typer.colors.YELLOW, err=True)
    minutes = sum(c.duration_seconds for c in report.imported) / 60
    typer.echo(
        f"imported {len(report.imported)} clips ({minutes:.2f} min) into {dataset} as {label}; "
        f"already there {len(report.already_there)}; refused {len(report.rejected)}"
    )


@app.command("duplicates")
def dataset_duplicates(
    dataset_id: str,
    keep: Annotated[
        str | None,
        typer.Option(help="Keep this clip of its group of identical clips; discard the others."),
    ] = None,
) -> None:
    """Groups of identical clips (the same audio under two labels first), or keep one."""
    from waketrain.store.clips import get_clip
    from waketrain.store.hygiene import duplicate_groups, keep_one

    registry = open_registry()
    if keep is not None:
        clip = get_clip(registry, keep)
        for gone in keep_one(registry, dataset_id, clip.sha256, keep, actor="cli"):
            typer.echo(f"discarded {gone.id} ({gone.label})")
        return
    hygiene = duplicate_groups(registry, dataset_id)
    for group in hygiene.groups:
        labels = " / ".join(group.labels)
        typer.echo(f"{group.sha256[:12]} {'CONFLICT ' if group.conflict else ''}{labels}:")
        for i, clip in enumerate(group.clips):
            used = " (training uses this one)" if i == 0 else ""
            typer.echo(f"  {clip.id} {clip.label:8} {clip.speaker or '-'}{used}")
    typer.echo(
        f"{hygiene.left_out} clips left out as duplicates, {hygiene.label_conflicts} label "
        "conflicts"
    )


@app.command("split")
def dataset_split(
    recording: Annotated[Path, typer.Argument(help="A recording of up to ten minutes.")],
    dataset: Annotated[str, typer.Option(help="Dataset id.")],
    label: Annotated[str, typer.Option(help="positive, negative or noise.")],
    speaker: Annotated[str | None, typer.Option(help="Speaker tag for every clip.")] = None,
) -> None:
    """Cut a long recording into its phrases (VAD) and add each as a clip."""
    from waketrain.store.clips import ClipMetadata
    from waketrain.store.long_recordings import AcceptSegments, accept_segments, propose_split

    registry = open_registry()
    proposed = propose_split(registry, dataset, recording.read_bytes(), recording.name)
    if not proposed.segments:
        raise typer.BadParameter(f"no speech found in {recording.name}")
    metadata = ClipMetadata(label=label, speaker=speaker, source="import")  # type: ignore[arg-type]
    accepted = AcceptSegments(metadata=metadata, segments=proposed.segments)
    for clip in accept_segments(registry, proposed.id, accepted, actor="cli"):
        typer.echo(f"{clip.id} {clip.notes}")
    typer.echo(f"added {len(proposed.segments)} clips to {dataset} as {label}")
