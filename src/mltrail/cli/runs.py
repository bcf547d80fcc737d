"""``mltrail runs``: the group; each subcommand lives in its own module, loaded on use."""

from __future__ import annotations

import click

from mltrail.cli.lazy import LazyGroup

#: Subcommand → where it lives, in the order ``mltrail runs --help`` lists them.
RUN_COMMANDS = {
    "ls": "mltrail.cli.runs_ls:ls_command",
    "show": "mltrail.cli.run_show:show_command",
    "diff": "mltrail.cli.run_diff:diff_command",
    "history": "mltrail.cli.run_ops:history_command",
    "artifacts": "mltrail.cli.artifacts:artifacts_command",
    "download": "mltrail.cli.artifacts:download_command",
    "delete": "mltrail.cli.run_ops:delete_command",
    "restore": "mltrail.cli.run_ops:restore_command",
}


@click.group("runs", cls=LazyGroup, lazy_commands=RUN_COMMANDS)
def runs_group() -> None:
    """Find, inspect, compare and manage runs.

    RUN is a full run id or a unique prefix of at least 4 characters, as printed by
    `mltrail runs ls`.
    """
