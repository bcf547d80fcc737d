"""``mltrail runs show``: everything about one run, in sections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from mltrail.cli import format as fmt
from mltrail.cli.context import get_client
from mltrail.cli.options import json_option

if TYPE_CHECKING:
    from rich.console import Console

    from mltrail.entities import FileInfo, Run, RunDataset
    from mltrail.tracking.client import MltrailClient

#: Artifacts listed by `runs show` before it points at `runs artifacts` for the rest.
MAX_ARTIFACTS = 20


@click.command("show")
@click.argument("run_ref", metavar="RUN")
@json_option
def show_command(run_ref: str, as_json: bool) -> None:
    """Show everything about a run.

    Overview, params, metrics, tags, input and output dataset versions, code version,
    environment and artifacts.
    """
    client = get_client()
    run = client.get_run(client.resolve_run_id(run_ref))
    experiment = client.get_experiment(run.info.experiment_id).name
    artifacts = client.list_artifacts(run.run_id)
    datasets = client.get_run_datasets(run.run_id)
    if as_json:
        fmt.echo_json(_as_dict(run, experiment, artifacts, datasets))
        return
    _print(client, run, experiment, artifacts, datasets)


def _as_dict(
    run: Run, experiment: str, artifacts: list[FileInfo], datasets: list[RunDataset]
) -> dict[str, Any]:
    from mltrail.tracking.liveness import shown

    info = run.info
    seen = shown(run)
    return {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "experiment_name": experiment,
        "status": seen.status,
        **({"status_reason": seen.reason} if seen.reason else {}),
        "lifecycle_stage": info.lifecycle_stage,
        "user_id": info.user_id,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "duration_ms": fmt.run_duration_ms(info.start_time, seen.end_time, seen.running),
        "parent_run_id": info.parent_run_id,
        "params": dict(sorted(run.data.params.items())),
        "metrics": dict(sorted(run.data.metrics.items())),
        "tags": dict(sorted(run.data.tags.items())),
        **{
            f"{direction}s": [
                {**d.dataset.to_dict(), "timestamp": d.timestamp}
                for d in datasets
                if d.direction == direction
            ]
            for direction in ("input", "output")
        },
        "artifacts": [
            {"path": f.path, "size": f.size, "hash": f.hash, "mode": oct(f.mode)} for f in artifacts
        ],
    }


def _print(
    client: MltrailClient,
    run: Run,
    experiment: str,
    artifacts: list[FileInfo],
    datasets: list[RunDataset],
) -> None:
    from mltrail.cli.render import console, key_values, section, styled
    from mltrail.tracking import capture as cap
    from mltrail.tracking.liveness import shown

    out = console()
    info, data = run.info, run.data
    seen = shown(run)
    status = seen.status + (f" ({seen.reason})" if seen.reason else "")
    status += " (deleted)" if info.lifecycle_stage == "deleted" else ""
    took = fmt.run_duration_ms(info.start_time, seen.end_time, seen.running)
    overview = [
        ("id", info.run_id),
        ("name", info.run_name),
        ("experiment", f"{experiment} (id {info.experiment_id})"),
        ("status", status),
        ("user", info.user_id),
        ("started", f"{fmt.timestamp(info.start_time)} ({fmt.when(info.start_time)})"),
        ("ended", fmt.timestamp(info.end_time)),
        *([("last heard of", fmt.timestamp(seen.end_time))] if seen.reason else []),
        ("duration", fmt.duration(took) + (" so far" if seen.running else "")),
    ]
    if info.parent_run_id:
        overview.append(("parent", info.parent_run_id))
    if cap.TAG_NOTE in data.tags:
        # A note is several lines by nature; its other control characters are still shown.
        overview.append(("note", styled(data.tags[cap.TAG_NOTE], multiline=True)))
    section(out, "Run", key_values(overview))

    params = sorted(data.params.items())
    section(out, f"Params ({len(params)})", key_values(params) if params else None)
    metrics = [(k, fmt.exact(v)) for k, v in sorted(data.metrics.items())]
    section(out, f"Metrics ({len(metrics)})", key_values(metrics) if metrics else None)
    tags = sorted((k, v) for k, v in data.tags.items() if not k.startswith(cap.PREFIX))
    section(out, f"Tags ({len(tags)})", key_values(tags) if tags else None)
    inputs = [d for d in datasets if d.direction == "input"]
    outputs = [d for d in datasets if d.direction == "output"]
    section(out, f"Inputs ({len(inputs)})", _datasets_grid(inputs) if inputs else None)
    # Outputs are rarer (pipeline stages): no empty section for runs that wrote none.
    if outputs:
        section(out, f"Outputs ({len(outputs)})", _datasets_grid(outputs))

    by_path = {f.path: f for f in artifacts}
    section(out, "Code", _code_rows(data.tags, by_path), empty="not captured")
    section(out, "Environment", _env_rows(client, run, by_path), empty="not captured")
    _artifacts_section(out, run, artifacts)


def _datasets_grid(datasets: list[RunDataset]) -> Any:
    """Path, short hash, size (and files for a folder), context: one dataset version per line."""
    from mltrail.cli.render import grid as safe_grid
    from mltrail.cli.render import terminal_width

    sizes = [
        fmt.size(d.dataset.size)
        if d.dataset.nfiles is None
        else f"{d.dataset.nfiles} file{'' if d.dataset.nfiles == 1 else 's'}, "
        f"{fmt.size(d.dataset.size)}"
        for d in datasets
    ]
    paths = [fmt.visible(d.dataset.path) for d in datasets]
    contexts = [fmt.visible(d.dataset.context or "") for d in datasets]
    # Hash and size stay whole; the path, then the context, give way in a narrow terminal.
    size_w = max(map(len, sizes))
    room = terminal_width() - 2 - 12 - size_w - 2 * 2
    context_w = min(max(map(len, contexts)), 24)
    room -= context_w + 2 if context_w else 0
    path_w = max(min(max(map(len, paths)), room), 16)
    grid = safe_grid(padding=(0, 2))
    grid.add_column(no_wrap=True, overflow="ellipsis", max_width=path_w)
    grid.add_column(no_wrap=True, min_width=12)
    grid.add_column(justify="right", no_wrap=True, min_width=size_w)
    if context_w:
        grid.add_column(no_wrap=True, overflow="ellipsis", max_width=context_w, style="dim")
    for d, path, size, context in zip(datasets, paths, sizes, contexts, strict=True):
        row = [path, d.dataset.hash[:12], size]
        grid.add_row(*row, *([context] if context_w else []))
    return grid


def _code_rows(tags: dict[str, str], by_path: dict[str, FileInfo]) -> Any:
    from mltrail.cli.render import key_values
    from mltrail.tracking import capture as cap

    dirty = tags.get(cap.TAG_GIT_DIRTY)
    rows = [
        ("commit", tags.get(cap.TAG_GIT_COMMIT)),
        ("branch", tags.get(cap.TAG_GIT_BRANCH)),
        ("dirty", {"true": "yes", "false": "no"}.get(dirty or "", dirty)),
        ("repo", tags.get(cap.TAG_GIT_REPO)),
        ("command", tags.get(cap.TAG_COMMAND)),
        ("entry point", tags.get(cap.TAG_ENTRY_POINT)),
    ]
    diff = by_path.get(cap.DIFF_ARTIFACT)
    if diff is not None:
        rows.append(("diff", f"{diff.path} ({fmt.size(diff.size)})"))
    present = [(k, v) for k, v in rows if v]
    return key_values(present) if present else None


def _env_rows(client: MltrailClient, run: Run, by_path: dict[str, FileInfo]) -> Any:
    from mltrail.cli.render import key_values
    from mltrail.errors import MltrailError
    from mltrail.tracking import capture as cap

    tags = run.data.tags
    rows = [("python", tags.get(cap.TAG_PYTHON)), ("platform", tags.get(cap.TAG_PLATFORM))]
    if cap.REQUIREMENTS_ARTIFACT in by_path:
        try:
            text = client.read_artifact(run.run_id, cap.REQUIREMENTS_ARTIFACT).decode("utf-8")
            count = f"{sum(1 for line in text.splitlines() if line.strip())}, "
        except (MltrailError, OSError, UnicodeDecodeError):
            # The count is a convenience; the listing still points at the file.
            count = ""
        rows.append(("packages", f"{count}see artifact {cap.REQUIREMENTS_ARTIFACT}"))
    present = [(k, v) for k, v in rows if v]
    return key_values(present) if present else None


def _artifacts_section(out: Console, run: Run, artifacts: list[FileInfo]) -> None:
    from rich.text import Text

    from mltrail.cli.render import grid as safe_grid
    from mltrail.cli.render import section, styled
    from mltrail.tracking import capture as cap

    shown_elsewhere = {cap.DIFF_ARTIFACT, cap.REQUIREMENTS_ARTIFACT}
    system = [f for f in artifacts if f.path.startswith(cap.SYSTEM_ARTIFACT_DIR + "/")]
    user = [f for f in artifacts if f not in system]
    total = fmt.size(sum(f.size for f in user))
    if not user:
        section(out, "Artifacts (0)")
    else:
        grid = safe_grid(padding=(0, 2))
        grid.add_column(no_wrap=True, overflow="ellipsis", max_width=60)
        grid.add_column(justify="right", no_wrap=True)
        for f in user[:MAX_ARTIFACTS]:
            grid.add_row(f.path, fmt.size(f.size))
        if len(user) > MAX_ARTIFACTS:
            more = len(user) - MAX_ARTIFACTS
            grid.add_row(
                Text(f"… {more} more: mltrail runs artifacts {run.run_id[:8]}", style="dim"), ""
            )
        section(out, f"Artifacts ({len(user)}, {total})", grid)
    extra = [f.path for f in system if f.path not in shown_elsewhere]
    if extra:
        out.print(styled(f"  system files: {', '.join(extra)}", "dim"))
