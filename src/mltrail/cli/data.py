"""``mltrail data``: version datasets with pointer files; move them to and from remotes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mltrail.cli import format as fmt
from mltrail.cli.options import json_option

if TYPE_CHECKING:
    from mltrail.data import CheckedOut, DatasetStatus, Reporter
    from mltrail.data.transfer import Transfer

#: Below this much work, a progress bar would only flicker.
PROGRESS_MIN_FILES = 1000
PROGRESS_MIN_BYTES = 64 * 1024 * 1024
#: Files listed per dataset in `data status` before "… and N more".
MAX_LISTED = 10


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _reporter() -> Reporter:
    """A rich progress bar on stderr when it is a terminal, else nothing."""
    from mltrail.cli.render import is_terminal
    from mltrail.data import Reporter

    if not is_terminal(sys.stderr):
        return Reporter()

    class Bar(Reporter):
        def __init__(self) -> None:
            self._progress: Any = None
            self._task: Any = None

        def begin(self, label: str, total_bytes: int, total_files: int) -> None:
            if total_files < PROGRESS_MIN_FILES and total_bytes < PROGRESS_MIN_BYTES:
                return
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            from mltrail.cli.render import console as safe_console

            self._progress = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=safe_console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(f"{label} {total_files} files", total=total_bytes)

        def advance(self, nbytes: int) -> None:
            if self._progress is not None:
                self._progress.advance(self._task, nbytes)

        def end(self) -> None:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None

    return Bar()


@click.group("data")
def data_group() -> None:
    """Version datasets: pointer files in Git, content in .mltrail/objects."""


@data_group.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def add_command(paths: tuple[Path, ...]) -> None:
    """Track files or folders: store them and write PATH.trail pointer files.

    Commit the pointer files and the .gitignore changes; the data itself stays out of Git.
    Adding an unchanged path again does nothing.
    """
    from mltrail.data import add

    results = add(paths, reporter=_reporter())
    for r in results:
        what = _plural(r.nfiles, "file") + ", " if r.kind == "dir" else ""
        detail = f"({what}{fmt.size(r.size)}, {r.hash[:12]})"
        if r.changed:
            fmt.echo(f"Added {fmt.visible(r.path)} {detail} -> {fmt.visible(r.pointer)}")
        else:
            fmt.echo(f"Unchanged {fmt.visible(r.path)} {detail}")
    changed = [r for r in results if r.changed]
    if changed:
        names = [r.pointer for r in changed]
        for r in changed:
            ignore = str(Path(Path(r.path).parent, ".gitignore").as_posix())
            if ignore not in names:
                names.append(ignore)
        fmt.echo(f"To record this version: git add {' '.join(map(fmt.visible, names))}")


_LABEL = {
    "modified": "modified:",
    "deleted": "deleted:",
    "not in cache": "not in cache:",
}


@data_group.command("status")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@json_option
def status_command(paths: tuple[Path, ...], as_json: bool) -> None:
    """Show which tracked datasets differ from their pointer files (all, or PATHS).

    States: unchanged, modified, deleted (the workspace copy is missing) and not in cache (the
    version a pointer names is not stored locally). For folders, the files added, modified or
    deleted are listed.
    """
    from mltrail.data import status

    results = status(paths or None, reporter=_reporter())
    if as_json:
        fmt.echo_json([r.to_dict() for r in results])
        return
    if not results:
        fmt.echo("No tracked data; track some with: mltrail data add PATH")
        return
    changed = [r for r in results if r.state != "unchanged"]
    for r in changed:
        _print_status(r)
    clean = len(results) - len(changed)
    if not changed:
        fmt.echo(f"Data is up to date ({_plural(clean, 'dataset')}).")
    elif clean:
        fmt.echo(f"{_plural(clean, 'other dataset')} unchanged.")


def _print_status(r: DatasetStatus) -> None:
    counts = [
        f"{len(files)} {word}"
        for files, word in ((r.added, "added"), (r.modified, "modified"), (r.deleted, "deleted"))
        if files
    ]
    extra = f" ({', '.join(counts)})" if counts else ""
    if r.state != "not in cache" and not r.in_cache:
        extra += " (not in cache)"
    fmt.echo(f"  {_LABEL[r.state]:<15}{fmt.visible(r.path)}{extra}")
    _print_files(r.path, r.added, r.modified, r.deleted)


def _print_files(base: str, added: list[str], modified: list[str], deleted: list[str]) -> None:
    """List up to MAX_LISTED changed files of a folder dataset."""
    listed = 0
    for files, word in ((added, "new"), (modified, "modified"), (deleted, "deleted")):
        for name in files:
            if listed == MAX_LISTED:
                break
            fmt.echo(f"      {word + ':':<10}{fmt.visible(base)}/{fmt.visible(name)}")
            listed += 1
    total = len(added) + len(modified) + len(deleted)
    if total > listed:
        fmt.echo(f"      … and {total - listed} more (see --json)")


@data_group.command("checkout")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite workspace changes that were never added (they are stored nowhere else).",
)
@click.option(
    "--link",
    type=click.Choice(["auto", "reflink", "copy", "hardlink"]),
    help="How to put files in place: auto (reflink, else copy), reflink, copy, or hardlink "
    "(read-only, shares the cached object; see docs/data.md). Default: [data] link in "
    ".mltrail/config.toml, or auto.",
)
def checkout_command(paths: tuple[Path, ...], force: bool, link: str | None) -> None:
    """Make the workspace match the pointer files (all, or PATHS), from the local cache.

    Every file is verified against its hash before it is put in place. Files are reflinked or
    copied unless hardlinks are asked for; hardlinked files are read-only, and `mltrail data
    unprotect PATH` makes writable copies.
    """
    from mltrail.data import checkout
    from mltrail.data.problems import Incomplete

    try:
        results = checkout(paths or None, force=force, link=link, reporter=_reporter())
    except Incomplete as e:
        _print_checkout(e.partial or [])
        raise
    _print_checkout(results)


def _print_checkout(results: list[CheckedOut]) -> None:
    from mltrail.cli.errors import print_warning

    for r in results:
        if r.written:
            how = ", ".join(f"{n} {kind}" for kind, n in sorted(r.links.items()))
            fmt.echo(f"Checked out {fmt.visible(r.path)}: {_plural(r.written, 'file')} ({how})")
        else:
            fmt.echo(f"Up to date {fmt.visible(r.path)}")
    for r in results:
        if r.warning:
            print_warning(r.warning)


@data_group.command("unprotect")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def unprotect_command(paths: tuple[Path, ...]) -> None:
    """Replace read-only hardlinks into the cache by writable copies, so PATHS can be edited."""
    from mltrail.data import unprotect

    n = unprotect(paths)
    fmt.echo(f"Made {_plural(n, 'file')} writable." if n else "Nothing to unprotect.")


def _transfer_options(f: Any) -> Any:
    f = click.option(
        "-j",
        "--jobs",
        type=click.IntRange(1, 256),
        help="Parallel transfers (default: 8 for S3, a few per core for folders).",
    )(f)
    f = click.option(
        "-r", "--remote", metavar="NAME", help="Remote to use (default: the default)."
    )(f)
    return click.argument("paths", nargs=-1, type=click.Path(path_type=Path))(f)


def _transfer_line(verb: str, t: Transfer) -> str:
    # push and fetch count the same unit: objects (file contents and folder listings).
    moved = f"{_plural(t.copied, 'object')} ({fmt.size(t.bytes)})"
    return (
        f"{verb} {moved} for {_plural(t.datasets, 'dataset')} "
        f"({t.remote}: {t.url}); {t.present} already there"
    )


def _print_transfer(verb: str, t: Transfer, as_json: bool) -> None:
    if as_json:
        fmt.echo_json(t.to_dict())
    else:
        fmt.echo(_transfer_line(verb, t))


@data_group.command("push")
@_transfer_options
@click.option(
    "--all-commits",
    is_flag=True,
    help="Also every version committed on any branch, tag or ref (those `mltrail import dvc` "
    "recorded included), so a clone can open any revision.",
)
@json_option
def push_command(
    paths: tuple[Path, ...], remote: str | None, jobs: int | None, all_commits: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Send the versions the pointer files name (all, or PATHS) to a remote.

    Only objects the remote lacks are sent, in parallel; a folder's listing goes last, so an
    interrupted push leaves nothing that looks complete, and running it again sends the rest.
    """
    from mltrail.data.problems import Incomplete
    from mltrail.data.transfer import push

    try:
        result = push(
            paths or None, remote=remote, jobs=jobs, reporter=_reporter(), all_commits=all_commits
        )
    except Incomplete as e:
        # What did go up is shown first; the error then names every object left out (exit 1).
        _print_transfer("Pushed", e.partial, as_json)
        raise
    _print_transfer("Pushed", result, as_json)


@data_group.command("fetch")
@_transfer_options
@json_option
def fetch_command(
    paths: tuple[Path, ...], remote: str | None, jobs: int | None, as_json: bool
) -> None:
    """Download into the local cache the versions the pointer files name (workspace untouched).

    Every object is verified against its hash as it arrives.
    """
    from mltrail.data.problems import Incomplete
    from mltrail.data.transfer import fetch

    try:
        result = fetch(paths or None, remote=remote, jobs=jobs, reporter=_reporter())
    except Incomplete as e:
        _print_transfer("Fetched", e.partial, as_json)
        raise
    _print_transfer("Fetched", result, as_json)


@data_group.command("pull")
@_transfer_options
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite workspace changes that were never added (they are stored nowhere else).",
)
def pull_command(
    paths: tuple[Path, ...], remote: str | None, jobs: int | None, force: bool
) -> None:
    """Fetch, then check out: the workspace gets the exact bytes the pointer files name."""
    from mltrail.data.problems import Incomplete
    from mltrail.data.transfer import pull

    try:
        result = pull(paths or None, remote=remote, jobs=jobs, force=force, reporter=_reporter())
    except Incomplete as e:
        # The datasets that are complete were checked out: say so before the error.
        fmt.echo(_transfer_line("Fetched", e.partial.fetched))
        _print_checkout(e.partial.checked_out)
        raise
    fmt.echo(_transfer_line("Fetched", result.fetched))
    _print_checkout(result.checked_out)


@data_group.command("diff")
@click.argument("a_rev", default="HEAD", metavar="[A_REV]")
@click.argument("b_rev", required=False, metavar="[B_REV]")
@json_option
def diff_command(a_rev: str, b_rev: str | None, as_json: bool) -> None:
    """Show which datasets, and which files in them, changed between two Git revisions.

    Compares the pointer files at A_REV (default HEAD) with those at B_REV, or with the pointer
    files in the working tree when B_REV is not given.
    """
    from mltrail.data import diff

    results = diff(a_rev, b_rev)
    if as_json:
        fmt.echo_json([d.to_dict() for d in results])
        return
    if not results:
        fmt.echo(f"No dataset changed between {a_rev} and {b_rev or 'the working tree'}.")
        return
    for d in results:
        old = f"{d.old.hash[:12]}" if d.old else ""
        new = f"{d.new.hash[:12]}" if d.new else ""
        arrow = f"{old} -> {new}" if old and new else old or new
        counts = [
            f"{len(files)} {word}"
            for files, word in (
                (d.added, "added"),
                (d.modified, "modified"),
                (d.deleted, "deleted"),
            )
            if files
        ]
        extra = f"; {', '.join(counts)}" if counts else ""
        if not d.files_known:
            extra += "; files unknown (folder listing not in the local cache: mltrail data fetch)"
        fmt.echo(f"  {d.change + ':':<10}{fmt.visible(d.path)} ({arrow}{extra})")
        _print_files(d.path, d.added, d.modified, d.deleted)


@data_group.command("gc")
@click.option(
    "-k",
    "--keep-referenced-by",
    "keep",
    multiple=True,
    type=click.Choice(["workspace", "all-commits", "all-runs"]),
    help="What must stay: the pointer files of the working tree (always), every Git commit, "
    "or every dataset version a run used. Repeat to combine.",
)
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@json_option
def gc_command(keep: tuple[str, ...], dry_run: bool, force: bool, as_json: bool) -> None:
    """Remove from the local cache the objects nothing refers to any more.

    Kept always: the versions the working tree's pointer files name, and every run's artifacts.
    Objects stored in the last 15 minutes are kept too (something may be about to refer to them).
    Temp files that killed commands left in the cache are removed as well.
    """
    from mltrail.data.gc import gc
    from mltrail.errors import InvalidInput

    if not dry_run and not force:
        preview = gc(keep, dry_run=True)
        if preview.removed == 0:
            # Only temp files of dead writers (if any) go: garbage by construction, no question.
            _print_gc(gc(keep) if preview.temp_files else preview, as_json)
            return
        if not sys.stdin.isatty():
            raise InvalidInput(
                f"gc would remove {_plural(preview.removed, 'object')} "
                f"({fmt.size(preview.removed_bytes)}) and needs confirmation",
                hint="Pass --force to remove them, or --dry-run to only look.",
            )
        click.confirm(
            f"Remove {_plural(preview.removed, 'object')} ({fmt.size(preview.removed_bytes)}) "
            "from the local cache?",
            abort=True,
        )
    _print_gc(gc(keep, dry_run=dry_run, reporter=_reporter()), as_json)


def _print_gc(result: Any, as_json: bool) -> None:
    if as_json:
        fmt.echo_json(result.to_dict())
        return
    if result.removed == 0:
        done = "Nothing to remove"
    else:
        verb = "Would remove" if result.dry_run else "Removed"
        done = f"{verb} {_plural(result.removed, 'object')} ({fmt.size(result.removed_bytes)})"
    fmt.echo(
        f"{done}; "
        f"kept {result.referenced} referenced by {', '.join(result.scopes)} or by runs"
        + (f", {result.recent} stored in the last 15 minutes" if result.recent else "")
        + "."
    )
    if result.temp_files:
        verb = "Would remove" if result.dry_run else "Removed"
        fmt.echo(
            f"{verb} {_plural(result.temp_files, 'temp file')} ({fmt.size(result.temp_bytes)}) "
            "left by killed commands."
        )
    if result.unknown_trees:
        fmt.echo(
            f"Note: {_plural(result.unknown_trees, 'folder version')} not in the cache; "
            "their files (if any are here) were not counted as referenced."
        )


from mltrail.cli.data_log import log_command  # noqa: E402

data_group.add_command(log_command)
