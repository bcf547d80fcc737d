"""``mltrail repro`` and ``mltrail dag``: run a pipeline's stale stages; draw its stage graph."""

from __future__ import annotations

import functools
from collections.abc import Callable

import click

from mltrail.cli import format as fmt

_VERB = {
    "unchanged": "Stage {name!r} is up to date",
    "frozen": "Stage {name!r} is frozen, not run",
    "running": "Running stage {name!r} ({detail})",
    "ran": "Ran {name!r} in {detail}",
    "restored": "Restored {name!r} from the run cache, without running it ({detail})",
    "would run": "Would run {name!r} ({detail})",
    "failed": "Stage {name!r} failed",
    "warning": "warning: {name}: {detail}",
    "point": "== grid point: {name}",
    "point done": "== grid point done: {name} ({detail})",
}


def _progress(event: str, name: str, detail: str, prefix: str = "") -> None:
    template = _VERB.get(event)
    if template is not None:
        fmt.echo(prefix + template.format(name=name, detail=detail), err=event == "warning")


def _point_progress(label: str) -> Callable[[str, str, str], None]:
    """Return the progress callback of a grid point run alongside others: lines say the point."""
    return functools.partial(_progress, prefix=f"[{label}] ")


@click.command("repro")
@click.argument("stages", nargs=-1)
@click.option("-f", "--force", is_flag=True, help="Run the selected stages even if up to date.")
@click.option(
    "-S",
    "--set-param",
    "overrides",
    multiple=True,
    metavar="[FILE:]KEY=VALUE",
    help="Set a param in params.yaml (or FILE) before running, like `dvc exp run -S`. Repeatable.",
)
@click.option(
    "--grid",
    multiple=True,
    metavar="KEY=V1,V2,...",
    help="Run the pipeline once per value (cross product over several --grid); each stage "
    "execution is a run. The workspace is put back as it was afterwards.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Run up to N independent stages at the same time; with --grid, up to N points at "
    "the same time, each in a temporary copy of the workspace.",
)
@click.option("--dry", is_flag=True, help="Only say which stages would run, and why.")
def repro_command(
    stages: tuple[str, ...],
    force: bool,
    overrides: tuple[str, ...],
    grid: tuple[str, ...],
    jobs: int,
    dry: bool,
) -> None:
    """Run the stale stages of mltrail.yaml in order; STAGES limits it to them and their deps.

    A stage runs when its command, deps, params or outs differ from mltrail.lock. When the same
    command, deps and params ran before, its outs come back from the run cache without running.
    Each stage execution is recorded as a run in the experiment named after the pipeline.
    """
    from mltrail.pipeline.runner import repro

    if grid:
        if dry:
            raise click.UsageError("--dry cannot be combined with --grid")
        _sweep(stages, force, overrides, grid, jobs)
        return
    result = repro(
        stages or None, force=force, overrides=overrides, dry=dry, jobs=jobs, progress=_progress
    )
    if result.overrides:
        shown = ", ".join(f"{k}={v}" for k, v in result.overrides.items())
        where = "not written: --dry" if dry else "params file updated"
        fmt.echo(f"Params set: {shown} ({where})")
    ran, restored = result.count("ran"), result.count("restored")
    if dry:
        would = result.count("would run")
        fmt.echo(f"{would} of {len(result.stages)} stage(s) would run.")
    elif ran or restored:
        parts = [f"{ran} ran"] if ran else []
        if restored:
            parts.append(f"{restored} restored from the run cache")
        fmt.echo(f"Done: {', '.join(parts)}; {result.count('unchanged')} up to date.")
        fmt.echo("To record this version: git add mltrail.lock (and the outs' .trail files)")
    else:
        fmt.echo(f"Pipeline is up to date ({len(result.stages)} stage(s)).")


def _sweep(
    stages: tuple[str, ...],
    force: bool,
    overrides: tuple[str, ...],
    grid: tuple[str, ...],
    jobs: int,
) -> None:
    from mltrail.errors import InvalidState
    from mltrail.pipeline.sweep import OutsNotRestored, sweep

    unrestored: OutsNotRestored | None = None
    try:
        points = sweep(
            grid,
            stages or None,
            force=force,
            overrides=overrides,
            jobs=jobs,
            progress=_progress,
            point_progress=_point_progress,
        )
    except OutsNotRestored as e:
        points, unrestored = e.points, e  # still show the points' results, then the error
    fmt.echo("")
    keys = sorted({k for p in points for k in p.metrics})
    header = ["point", "ran", "restored", *keys]
    rows = []
    for p in points:
        r = p.result
        rows.append(
            [
                " ".join(p.overrides),
                str(r.count("ran")) if r else "-",
                str(r.count("restored")) if r else "-",
                *[_num(p.metrics.get(k)) for k in keys],
            ]
        )
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    for line in [header, *rows]:
        fmt.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    failed = [p for p in points if p.error]
    summary = f"{len(failed)} grid point(s) failed: " + "; ".join(
        f"{' '.join(p.overrides)}: {p.error}" for p in failed
    )
    if unrestored is not None:
        fmt.echo(f"{len(points)} point(s); params files put back, but not every out.")
        if failed:
            fmt.echo(summary, err=True)
        raise unrestored
    fmt.echo(f"{len(points)} point(s); params files and outs put back as they were.")
    if failed:
        raise InvalidState(summary)


def _num(value: object) -> str:
    """A metric of a grid point as the CLI shows metrics; non-numbers as they are."""
    if value is None:
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return fmt.number(float(value))
    return str(value)


@click.command("dag")
@click.argument("stage", required=False)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["ascii", "mermaid", "dot"]),
    default="ascii",
    show_default=True,
    help="ascii: a tree in the terminal; mermaid or dot: text for those renderers.",
)
def dag_command(stage: str | None, output_format: str) -> None:
    """Show the stage graph of mltrail.yaml; STAGE limits it to that stage and its deps."""
    from mltrail.data.project import Project
    from mltrail.pipeline.dag import build
    from mltrail.pipeline.spec import load

    project = Project.find()
    dag = build(load(project.root))
    names = dag.with_upstream([stage]) if stage else None
    if not dag.names:
        fmt.echo("No stages in mltrail.yaml.")
        return
    text = {"ascii": dag.ascii, "mermaid": dag.mermaid, "dot": dag.dot}[output_format](names)
    fmt.echo(text)
