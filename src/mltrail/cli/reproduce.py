"""``mltrail reproduce``: re-run a run on its commit and inputs; do its outputs hash the same?"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mltrail.cli import format as fmt
from mltrail.cli.options import json_option

if TYPE_CHECKING:
    from mltrail.reproduce import Reproduction


@click.command("reproduce")
@click.argument("run", metavar="RUN")
@click.option(
    "--keep",
    is_flag=True,
    help="Leave the temporary Git worktree in place afterwards (its path is printed).",
)
@click.option(
    "--allow-dirty",
    is_flag=True,
    help="Reproduce a run recorded with uncommitted changes: its recorded diff is applied on "
    "top of its commit.",
)
@click.option(
    "--no-record",
    is_flag=True,
    help="Send the runs the command logs to a throwaway store instead of this project's.",
)
@click.option(
    "-r",
    "--remote",
    metavar="NAME",
    help="Remote to fetch missing input data from (default: the default remote).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Parallel downloads when fetching input data.",
)
@json_option
def reproduce_command(
    run: str,
    keep: bool,
    allow_dirty: bool,
    no_record: bool,
    remote: str | None,
    jobs: int | None,
    as_json: bool,
) -> None:
    """Re-run RUN on its code commit and input data; report whether its outputs hash the same.

    RUN's commit is checked out in a temporary Git worktree, the input dataset versions it
    recorded are restored there (from the local cache, else fetched from the remote), and its
    recorded command runs again (a pipeline stage's run: the stage's command). Each output dataset
    RUN recorded is then hashed and compared: same, different or missing. Exit status 0 when all
    are the same, 1 when not (or on any error). The command's output goes to stderr.

    Runs the command logs are recorded in this project's store, tagged mltrail.reproduce.of=RUN
    (--no-record: in a throwaway store).

    \b
    Examples:
      mltrail reproduce 3f2a9c1e
      mltrail reproduce 3f2a9c1e --keep          # inspect the worktree afterwards
      mltrail reproduce 3f2a9c1e --allow-dirty   # a run recorded with uncommitted changes
      mltrail reproduce 3f2a9c1e --json --no-record
    """
    from mltrail.cli.context import get_client
    from mltrail.cli.data import _reporter
    from mltrail.reproduce import reproduce

    client = get_client()
    if not as_json:
        fmt.echo(f"Reproducing run {run} in a temporary Git worktree…", err=True)
    result = reproduce(
        run,
        client=client,
        keep=keep,
        allow_dirty=allow_dirty,
        record=not no_record,
        remote=remote,
        jobs=jobs,
        reporter=_reporter(),
        output=lambda line: fmt.echo(line, err=True),
    )
    if as_json:
        fmt.echo_json(result.to_dict())
    else:
        _print(result)
    if not result.all_match:
        click.get_current_context().exit(1)


def _print(r: Reproduction) -> None:
    from mltrail.cli.errors import print_warning

    for note in r.warnings:
        print_warning(note)
    fmt.echo(f"Run {r.run_id} at commit {r.commit[:12]}")
    for ref in r.inputs:
        fmt.echo(f"  input    {fmt.visible(ref.path)} ({ref.hash[:12]})")
    if r.fetched:
        fmt.echo(f"  fetched  {r.fetched} object(s) from the remote")
    command = r.command[0] if r.shell else " ".join(r.command)
    fmt.echo(f"  command  {fmt.visible(command)}  (in {fmt.visible(r.cwd)})")
    if r.dirty_applied:
        fmt.echo("  applied  the run's recorded uncommitted changes")
    if not r.outputs:
        fmt.echo("The run recorded no output datasets: nothing to compare.")
    for o in r.outputs:
        if o.verdict == "different":
            detail = f"{o.recorded[:12]} -> {(o.reproduced or '')[:12]}"
        else:
            detail = o.recorded[:12]
        fmt.echo(f"  {o.verdict:<10}{fmt.visible(o.path)} ({detail})")
    differ = sum(o.verdict != "same" for o in r.outputs)
    if r.outputs:
        if differ:
            fmt.echo(f"{differ} of {len(r.outputs)} outputs differ.")
        else:
            fmt.echo(f"All {len(r.outputs)} outputs hash the same.")
    if r.recorded_runs:
        fmt.echo(f"Re-run recorded as run {', '.join(r.recorded_runs)}.")
    if r.worktree:
        fmt.echo(
            f"Worktree kept at {fmt.visible(r.worktree)} "
            "(remove: git worktree remove --force PATH)."
        )
