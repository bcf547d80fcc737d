"""``mltrail runs artifacts`` and ``runs download``: a run's stored files."""

from __future__ import annotations

from pathlib import Path

import click

from mltrail.cli import format as fmt
from mltrail.cli.context import get_client
from mltrail.cli.options import json_option

#: Hash characters shown in the listing; enough to tell files apart at a glance.
SHORT_HASH = 12


@click.command("artifacts")
@click.argument("run_ref", metavar="RUN")
@click.argument("path", required=False)
@json_option
def artifacts_command(run_ref: str, path: str | None, as_json: bool) -> None:
    """List a run's artifact files (under PATH if given)."""
    from mltrail.errors import NotFound

    client = get_client()
    run_id = client.resolve_run_id(run_ref)
    files = client.list_artifacts(run_id, path)
    if as_json:
        fmt.echo_json(
            [{"path": f.path, "size": f.size, "hash": f.hash, "mode": oct(f.mode)} for f in files]
        )
        return
    if not files:
        if path:
            raise NotFound(
                f"run {run_id[:8]} has no artifact {path!r}",
                hint=f"List its artifacts with `mltrail runs artifacts {run_id[:8]}`.",
            )
        fmt.echo(f"Run {run_id[:8]} has no artifacts.")
        return
    from rich.text import Text

    from mltrail.cli.render import Column, console, table, table_width, terminal_width

    sizes = [fmt.size(f.size) for f in files]
    size_w = max(len("size"), *map(len, sizes))
    # Size and hash stay whole; a long path (or one with escapes shown) is what gives way.
    path_w = max(terminal_width() - table_width([size_w, SHORT_HASH]) - 3, 16)
    out = table(
        [
            Column("path", max_width=path_w),
            Column("size", justify="right", min_width=size_w),
            Column("hash", min_width=SHORT_HASH),
        ]
    )
    for f, size in zip(files, sizes, strict=True):
        out.add_row(f.path, size, f.hash[:SHORT_HASH])
    con = console()
    con.print(out)
    total = sum(f.size for f in files)
    con.print(
        Text(f"{len(files)} file{'s' if len(files) != 1 else ''}, {fmt.size(total)}", style="dim")
    )


@click.command("download")
@click.argument("run_ref", metavar="RUN")
@click.argument("path", required=False)
@click.option(
    "-o",
    "--output",
    "dest",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to put the files: a folder (or a file name when downloading one file).",
)
def download_command(run_ref: str, path: str | None, dest: Path) -> None:
    """Download a run's artifacts, or only PATH (a file or folder).

    Every byte is checked against its hash on the way out.
    """
    client = get_client()
    run_id = client.resolve_run_id(run_ref)
    files = client.list_artifacts(run_id, path)
    target = client.download_artifacts(run_id, path, dest)
    total = fmt.size(sum(f.size for f in files))
    fmt.echo(f"Downloaded {len(files)} file{'s' if len(files) != 1 else ''} ({total}) to {target}")
