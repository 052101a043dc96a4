"""Making and judging models here: `train`, `synth`, `try` and `eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from waketrain.cli.startup import NoiseDirs, RirDirs, load_settings, open_registry, worker_options

app = typer.Typer()


@app.command()
def train(
    dataset: Annotated[str, typer.Option(help="Dataset id.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Config override key=value (e.g. epochs=10); repeatable."),
    ] = None,
    init_from: Annotated[
        str | None, typer.Option(help="Warm start from this earlier job's checkpoint.")
    ] = None,
    noise_dir: NoiseDirs = None,
    rir_dir: RirDirs = None,
    eval_negatives: Annotated[
        list[Path] | None,
        typer.Option(
            help="Extra held-out negative audio for false accepts per hour; repeatable "
            "(default: WAKETRAIN_EVAL_NEGATIVE_DIRS)."
        ),
    ] = None,
) -> None:
    """Train, evaluate and export a model as a job run here; prints the job id and export folder."""
    from waketrain.jobs.worker import train_here
    from waketrain.runtime.model_card import StreamCost
    from waketrain.training.config import parse_set_options
    from waketrain.training.diagnosis import MissedClip
    from waketrain.training.pipeline import ProgressUpdate

    def show(update: ProgressUpdate) -> None:
        typer.echo(f"[{update.progress:4.0%}] {update.stage}: {update.message}", err=True)

    settings = load_settings()
    options = worker_options(settings, noise_dir, rir_dir, eval_negatives)
    registry = open_registry(settings)
    job = train_here(
        registry, dataset, parse_set_options(set_ or []), "cli", options, init_from, show
    )
    typer.echo(f"job {job.id}")
    if job.status != "succeeded" or job.metrics is None or job.export_dir is None:
        typer.secho(f"error: the job {job.status}: {job.error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.echo(f"export {registry.layout.root / job.export_dir}")
    typer.echo(_outcome(job.metrics, job.config["target_fa_per_hour"]))
    if job.metrics.get("stream_cost"):
        cost = StreamCost.model_validate(job.metrics["stream_cost"])
        typer.echo(
            f"model {job.metrics['model_id']} ({job.metrics['backend']}): streaming costs "
            f"{cost.describe()}"
        )
    for missed in job.metrics.get("missed_positives") or []:
        clip = MissedClip(**missed)
        typer.echo(f"missed held-out positive: {clip.describe()}. {clip.advice}")


def _outcome(metrics: dict[str, Any], target: float) -> str:
    """The threshold, its error rates and whether the job met its false-accept target."""
    from waketrain.training.evaluate import FalseAccepts

    false_accepts = FalseAccepts(metrics["false_accepts"], metrics["negative_hours"])
    if metrics["target_met"]:
        verdict = "met"
    elif false_accepts.per_hour <= target:
        hours = metrics["hours_to_decide"]
        verdict = f"not shown: about {hours:.1f} h more negative audio would decide it"
    else:
        verdict = "NOT met"
    return (
        f"threshold {metrics['threshold']:.6g} (log-odds {metrics['threshold_log_odds']:.2f}): "
        f"FRR {metrics['frr']:.1%}; false accepts "
        f"{false_accepts.describe()}; target {target:g}/h {verdict}"
    )


@app.command()
def synth(
    dataset: Annotated[str | None, typer.Option(help="Speak this dataset's wake phrase.")] = None,
    phrase: Annotated[str | None, typer.Option(help="Or speak this phrase.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Synthesis setting key=value (e.g. positives=500)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same clips (and the cached ones).")] = 1234,
    out: Annotated[
        Path | None, typer.Option(help="Also copy the clips and manifest.json here.")
    ] = None,
) -> None:
    """Generate (or reuse) synthetic positives and confusable negatives with espeak-ng."""
    from waketrain.store.errors import InvalidInput
    from waketrain.store.health import dataset_summary
    from waketrain.synth.generate import copy_set, synth_config, synthesize
    from waketrain.training.config import parse_set_options

    registry = open_registry()
    if (dataset is None) == (phrase is None):
        raise InvalidInput("Give either --dataset ID or --phrase TEXT.")
    text = phrase if phrase is not None else dataset_summary(registry, str(dataset)).phrase
    config = synth_config(parse_set_options(set_ or []))
    result = synthesize(text, config, registry.layout.scratch, seed)
    if out is not None:
        copy_set(result, out)
    typer.echo(result.report.summary())
    for item in result.report.dropped:
        typer.echo(f"dropped {item['text']!r}: {item['reason']}")
    typer.echo(f"cache {result.report.folder}")
    if out is not None:
        typer.echo(f"copied to {out}")


@app.command("try")
def try_model(
    recording: Annotated[Path, typer.Argument(help="A recording (WAV, FLAC, OGG or MP3).")],
) -> None:
    """Score a recording with the current model as the detector would; prints when it fires."""
    from waketrain.jobs.tryout import score_with_current_model

    result = score_with_current_model(open_registry(), recording.read_bytes())
    peak = max(result.scores, default=0.0)
    typer.echo(f"model {result.model_id} ({result.phrase!r}), threshold {result.threshold:.4f}")
    typer.echo(f"peak score {peak:.4f} over {result.duration_seconds:.2f} s")
    if result.fired:
        typer.echo("fired at " + ", ".join(f"{t:.2f} s" for t in result.detections))
    else:
        typer.echo("did not fire")


@app.command("eval")
def eval_model(
    positives: Annotated[
        list[Path], typer.Option(help="Folder of wake-phrase recordings; repeatable.")
    ],
    negatives: Annotated[
        list[Path],
        typer.Option(help="Folder of audio without the phrase (any length); repeatable."),
    ],
    job: Annotated[
        str | None, typer.Option(help="Job whose model to test (default: the current model).")
    ] = None,
    artifact: Annotated[
        Path | None, typer.Option(help="Or: a model's export folder (metadata.json inside).")
    ] = None,
    background: Annotated[
        list[Path] | None,
        typer.Option(help="Folder to set the positives in at 10 dB (default: the negatives)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Test a model on recordings its job never saw: false rejects and false accepts per hour."""
    from waketrain.jobs.evaluation import evaluate_export, evaluate_job
    from waketrain.training.evaluate import FalseAccepts

    if artifact is not None:
        report = evaluate_export(artifact, positives, negatives, background)
    else:
        report = evaluate_job(open_registry(), job, positives, negatives, background)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    typer.echo(f"job {report.job_id}: model {report.model_id} ({report.phrase!r}), "
               f"threshold {report.threshold:.4f}\n")  # fmt: skip
    typer.echo("| audio | amount | measure | value |\n| --- | ---: | --- | ---: |")
    typer.echo(f"| positives in silence | {report.positives} clips | FRR | "
               f"{report.frr_clean:.1%} |")  # fmt: skip
    typer.echo(f"| positives at 10 dB SNR | {report.positives} clips | FRR | "
               f"{report.frr_noisy:.1%} |")  # fmt: skip
    for folder in report.negatives:
        typer.echo(f"| {folder.folder} | {folder.minutes:.1f} min | FA/h | "
                   f"{folder.fa_per_hour:.1f} ({folder.false_accepts}) |")  # fmt: skip
    minutes = sum(folder.minutes for folder in report.negatives)
    total = FalseAccepts(sum(f.false_accepts for f in report.negatives), minutes / 60)
    typer.echo(f"| all negatives | {minutes:.1f} min | FA/h | {total.describe()} |")
    best = report.best_within_target
    typer.echo(
        f"\nthis audio's best threshold within {report.target_fa_per_hour:g} FA/h: "
        + (f"{best.threshold:.4f} (FRR at 10 dB {best.frr_noisy:.1%})" if best else "none")
    )
