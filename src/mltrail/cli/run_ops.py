"""``mltrail runs history``, ``runs delete`` and ``runs restore``."""

from __future__ import annotations

import click

from mltrail.cli import format as fmt
from mltrail.cli.context import get_client
from mltrail.cli.options import json_option


@click.command("history")
@click.argument("run_ref", metavar="RUN")
@click.argument("key")
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    default=None,
    help="Show only the last N points. Default: all.",
)
@json_option
def history_command(run_ref: str, key: str, limit: int | None, as_json: bool) -> None:
    """Show every logged point of metric KEY of a run."""
    from mltrail.errors import NotFound

    client = get_client()
    run_id = client.resolve_run_id(run_ref)
    points = client.get_metric_history(run_id, key)
    if not points:
        known = sorted(client.get_run(run_id).data.metrics)
        raise NotFound(
            f"run {run_id[:8]} has no metric {key!r}",
            hint=f"Its metrics: {', '.join(known)}" if known else "It has no metrics.",
        )
    total = len(points)
    if limit is not None:
        points = points[-limit:]
    if as_json:
        fmt.echo_json(
            [{"step": p.step, "value": p.value, "timestamp": p.timestamp} for p in points]
        )
        return
    from rich.text import Text

    from mltrail.cli.render import Column, console, table

    out = table([Column("step", justify="right"), Column(key, justify="right"), Column("time")])
    for p in points:
        out.add_row(str(p.step), fmt.exact(p.value), fmt.clock(p.timestamp))
    con = console()
    con.print(out)
    if len(points) < total:
        con.print(Text(f"last {len(points)} of {total} points shown", style="dim"))


@click.command("delete")
@click.argument("run_refs", metavar="RUN...", nargs=-1, required=True)
def delete_command(run_refs: tuple[str, ...]) -> None:
    """Move runs to the bin (undo with `mltrail runs restore`)."""
    done, failed = _apply(run_refs, delete=True)
    if done:
        fmt.echo(f"Undo with: mltrail runs restore {' '.join(r[:8] for r in done)}")
    if failed:
        raise SystemExit(1)


@click.command("restore")
@click.argument("run_refs", metavar="RUN...", nargs=-1, required=True)
def restore_command(run_refs: tuple[str, ...]) -> None:
    """Bring deleted runs back."""
    _, failed = _apply(run_refs, delete=False)
    if failed:
        raise SystemExit(1)


def _apply(run_refs: tuple[str, ...], *, delete: bool) -> tuple[list[str], int]:
    """Delete or restore each run, reporting failures one by one; return (done, failures)."""
    from mltrail.cli.errors import report
    from mltrail.errors import MltrailError

    client = get_client()
    # Resolve every reference first, so a typo changes nothing.
    run_ids = list(dict.fromkeys(client.resolve_run_id(ref) for ref in run_refs))
    done: list[str] = []
    for run_id in run_ids:
        try:
            name = client.get_run(run_id).info.run_name
            (client.delete_run if delete else client.restore_run)(run_id)
        except MltrailError as exc:
            report(exc)
            continue
        fmt.echo(f"{'Deleted' if delete else 'Restored'} run {run_id[:8]} ({fmt.visible(name)})")
        done.append(run_id)
    return done, len(run_ids) - len(done)
