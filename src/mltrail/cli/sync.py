"""``mltrail sync``: send the writes that offline or interrupted processes left in the spool."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from mltrail.cli import format as fmt
from mltrail.cli.errors import reported


@click.command("sync")
@click.option("--dry-run", is_flag=True, help="Show what is waiting; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Seconds to keep retrying a server that does not answer (default MLTRAIL_FLUSH_TIMEOUT "
    "or 60).",
)
def sync_command(dry_run: bool, as_json: bool, timeout: float | None) -> None:
    """Send runs logged offline (MLTRAIL_MODE=offline), or left unsent by a process that died or
    lost its server, to the server they were logged for.

    Writes are sent in the order they were made and removed once the server has them, so an
    interrupted sync resumes where it stopped. The spool is MLTRAIL_SPOOL_DIR, else the project's
    .mltrail/spool. Exits 1 when something could not be sent.
    """
    with reported():
        from mltrail.store.spool import spool_root, sync

        root = spool_root()
        if dry_run:
            reports = sync(root, dry_run=True)
        else:
            with _bar(not as_json) as advance:
                reports = sync(root, progress=advance, timeout=timeout)
        failed = any(r.error or r.refused for r in reports)
        if as_json:
            fmt.echo(json.dumps({"spool": str(root), "servers": [r.to_dict() for r in reports]}))
        elif not reports or not any(r.records or r.busy_writers for r in reports):
            fmt.echo(f"Nothing to sync in {root}.")
        for r in reports if not as_json else ():
            if not (r.records or r.busy_writers):
                continue
            verb = "waiting" if dry_run else f"sent {r.sent} of"
            fmt.echo(
                f"{r.server}: {verb} {r.records} write(s) of {len(r.runs)} run(s), "
                f"{r.points:,} metric point(s)"
            )
            if r.refused:
                fmt.echo(f"  {r.refused} refused by the server (kept under rejected/)")
            if r.busy_writers:
                fmt.echo(f"  {r.busy_writers} running process(es) send their own writes")
            if r.error:
                fmt.echo(f"  stopped: {r.error}; run `mltrail sync` again later")
        if failed and not dry_run:
            raise SystemExit(1)


@contextmanager
def _bar(enabled: bool) -> Iterator[Callable[[Any], None] | None]:
    """A rich progress bar on stderr (a terminal only), counting records sent."""
    from mltrail.cli.render import is_terminal

    if not enabled or not is_terminal(sys.stderr):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from mltrail.cli.render import console as safe_console

    bar = Progress(
        TextColumn("Syncing"),
        BarColumn(),
        MofNCompleteColumn(),
        console=safe_console(stderr=True),
        transient=True,
    )
    task = bar.add_task("sync", total=None)
    with bar:
        yield lambda record: bar.advance(task)
