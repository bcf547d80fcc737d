"""``mltrail exp``: list, create, delete, restore and rename experiments."""

from __future__ import annotations

from typing import Any

import click

from mltrail.cli import format as fmt
from mltrail.cli.context import get_client
from mltrail.cli.options import ACTIVE_ONLY, json_option, view_options


@click.group("exp")
def exp_group() -> None:
    """Manage experiments (named groups of runs)."""


@exp_group.command("ls")
@view_options("experiments")
@json_option
def ls_command(view: str | None, as_json: bool) -> None:
    """List experiments with their run counts and last activity."""
    client = get_client()
    experiments = client.list_experiments(view or ACTIVE_ONLY)
    summaries = client.experiment_summaries([e.experiment_id for e in experiments])
    rows: list[dict[str, Any]] = []
    for exp in experiments:
        count, last_start = summaries.get(exp.experiment_id, (0, 0))
        rows.append(
            {
                "experiment_id": exp.experiment_id,
                "name": exp.name,
                "lifecycle_stage": exp.lifecycle_stage,
                "active_runs": count,
                "last_activity": max(exp.last_update_time, last_start),
                "creation_time": exp.creation_time,
                "last_update_time": exp.last_update_time,
                "last_run_start_time": last_start or None,
                "tags": exp.tags,
            }
        )
    if as_json:
        fmt.echo_json(rows)
        return
    if not rows:
        fmt.echo(
            "No experiments." if view else "No experiments; create one: mltrail exp create NAME"
        )
        return
    _print_table(rows, show_stage=bool(view and view != ACTIVE_ONLY))


def _print_table(rows: list[dict[str, Any]], show_stage: bool) -> None:
    from mltrail.cli.render import Column, console, table

    now = fmt.now_ms()
    columns = [
        Column("id", justify="right"),
        Column("name", max_width=40),
        Column("runs", justify="right"),
        Column("last activity"),
        Column("created"),
    ]
    if show_stage:
        columns.append(Column("state"))
    out = table(columns)
    for row in rows:
        cells = [
            row["experiment_id"],
            row["name"],
            str(row["active_runs"]),
            fmt.when(row["last_activity"], now),
            fmt.when(row["creation_time"], now),
        ]
        if show_stage:
            cells.append(row["lifecycle_stage"])
        out.add_row(*cells)
    console().print(out)


@exp_group.command("create")
@click.argument("name")
def create_command(name: str) -> None:
    """Create an experiment called NAME."""
    experiment_id = get_client().create_experiment(name)
    fmt.echo(f"Created experiment {name!r} (id {experiment_id})")


@exp_group.command("delete")
@click.argument("experiment", metavar="NAME_OR_ID")
def delete_command(experiment: str) -> None:
    """Move an experiment and its runs to the bin (undo with `mltrail exp restore`)."""
    client = get_client()
    exp = client.resolve_experiment(experiment)
    count, _ = client.experiment_summaries([exp.experiment_id]).get(exp.experiment_id, (0, 0))
    client.delete_experiment(exp.experiment_id)
    runs = f" and its {count} run{'s' if count != 1 else ''}" if count else ""
    fmt.echo(f"Deleted experiment {exp.name!r} (id {exp.experiment_id}){runs}")
    fmt.echo(f"Undo with: mltrail exp restore {exp.experiment_id}")


@exp_group.command("restore")
@click.argument("experiment", metavar="NAME_OR_ID")
def restore_command(experiment: str) -> None:
    """Bring a deleted experiment back, with the runs its deletion removed."""
    client = get_client()
    exp = client.resolve_experiment(experiment)
    client.restore_experiment(exp.experiment_id)
    count, _ = client.experiment_summaries([exp.experiment_id]).get(exp.experiment_id, (0, 0))
    fmt.echo(f"Restored experiment {exp.name!r} (id {exp.experiment_id}), {count} active runs")


@exp_group.command("rename")
@click.argument("experiment", metavar="NAME_OR_ID")
@click.argument("new_name", metavar="NEW")
def rename_command(experiment: str, new_name: str) -> None:
    """Rename an experiment."""
    client = get_client()
    exp = client.resolve_experiment(experiment)
    client.rename_experiment(exp.experiment_id, new_name)
    fmt.echo(f"Renamed experiment {exp.name!r} (id {exp.experiment_id}) to {new_name!r}")
