"""``mltrail data log``: every version of one dataset and the runs that used it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from mltrail.cli import format as fmt
from mltrail.cli.context import get_client
from mltrail.cli.options import json_option

if TYPE_CHECKING:
    from mltrail.data.version import DatasetLogEntry

#: Hash characters shown; the same as `runs artifacts` and `data add`.
SHORT_HASH = 12
#: Commit id characters shown, as `git log --oneline` does.
SHORT_COMMIT = 7
#: Run names listed per version before "…" (--json lists them all).
MAX_RUNS = 3


@click.command("log")
@click.argument("path", type=click.Path(path_type=Path))
@json_option
def log_command(path: Path, as_json: bool) -> None:
    """Show the versions of a dataset, newest first, with the runs that used each.

    Versions come from the Git commits that changed PATH.trail, the pointer in the workspace
    (marked *) and the versions runs recorded with mt.log_input / mt.log_output, even ones never
    added (commit —).
    """
    from mltrail.data.version import dataset_log

    if "\x00" in str(path):
        # No file or recorded path can hold one; the OS calls would fail with a ValueError.
        raise click.BadParameter(f"{str(path)!r} contains a NUL character", param_hint="PATH")
    log = dataset_log(path, client=get_client())
    if as_json:
        fmt.echo_json(log.to_dict())
        return
    from mltrail.cli.render import (
        COLUMN_GAP,
        Column,
        console,
        styled,
        table,
        table_width,
        terminal_width,
    )

    dash = fmt.missing()
    headers = ["", "date", "commit", "hash", "size", "files"]
    rows = [
        [
            "*" if v.current else "",
            fmt.when(v.time),
            v.commits[0].commit[:SHORT_COMMIT] if v.commits else dash,
            v.hash[:SHORT_HASH],
            fmt.size(v.size),
            str(v.nfiles) if v.nfiles is not None else "1",
        ]
        for v in log.versions
    ]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    # The run list gets what the other columns leave, and is cut between names to fit.
    room = max(terminal_width() - table_width(widths) - COLUMN_GAP, 8)
    out = table(
        [
            Column(""),
            Column("date"),
            Column("commit"),
            Column("hash"),
            Column("size", justify="right"),
            Column("files", justify="right"),
            Column("runs", max_width=room),
        ]
    )
    for v, row in zip(log.versions, rows, strict=True):
        out.add_row(*row, _runs(v, room) or dash)
    con = console()
    con.print(out)
    notes = [f"{len(log.versions)} version{'' if len(log.versions) == 1 else 's'} of {log.path}"]
    if any(v.current for v in log.versions):
        notes.append("* = the version its pointer names now")
    if any(not v.commits and not v.current for v in log.versions):
        notes.append(f"{dash} = never committed, seen in runs only")
    if not log.in_git:
        notes.append("no Git history (not a Git repository, or no commits yet)")
    for note in notes:
        con.print(styled(note, "dim"))


def _runs(version: DatasetLogEntry, width: int) -> str:
    """``3: prep (output), train-b, …``: how many runs, then the newest names that fit."""
    names: list[str] = []
    for use in version.uses:
        name = fmt.visible(use.run_name) + (" (output)" if use.direction == "output" else "")
        if name not in names:
            names.append(name)
    count = len({u.run_id for u in version.uses})
    if not count:
        return ""
    shown = names[:1]
    for name in names[1:MAX_RUNS]:
        more = ", …" if len(shown) + 1 < len(names) else ""
        if len(f"{count}: {', '.join([*shown, name])}{more}") > width:
            break
        shown.append(name)
    return f"{count}: {', '.join(shown)}" + (", …" if len(shown) < len(names) else "")
