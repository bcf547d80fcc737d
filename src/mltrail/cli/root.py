"""The root ``mltrail`` group: global options, the lazy command table, one error handler."""

from __future__ import annotations

from typing import Any

import click

from mltrail._version import __version__
from mltrail.cli.lazy import LazyGroup

#: Top-level command name → where it lives, in the order ``--help`` lists them.
COMMANDS = {
    "init": "mltrail.cli.project:init_command",
    "exp": "mltrail.cli.experiments:exp_group",
    "runs": "mltrail.cli.runs:runs_group",
    "data": "mltrail.cli.data:data_group",
    "remote": "mltrail.cli.remote:remote_group",
    "repro": "mltrail.cli.pipeline:repro_command",
    "dag": "mltrail.cli.pipeline:dag_command",
    "models": "mltrail.cli.models:models_group",
    "lineage": "mltrail.cli.lineage:lineage_command",
    "reproduce": "mltrail.cli.reproduce:reproduce_command",
    "import": "mltrail.cli.importer:import_group",
    "params": "mltrail.cli.pipeline_diff:params_group",
    "metrics": "mltrail.cli.pipeline_diff:metrics_group",
    "ui": "mltrail.cli.server:ui_command",
    "server": "mltrail.cli.server:server_group",
    "doctor": "mltrail.cli.doctor:doctor_command",
    "sync": "mltrail.cli.sync:sync_command",
}

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class RootGroup(LazyGroup):
    """The ``mltrail`` group: renders every error of every subcommand in one way."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Parse and run; an error while parsing or printing help is reported like any other."""
        from mltrail.cli.errors import reported

        with reported():
            return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; errors become messages and exit codes (see cli/errors.py)."""
        # Also here, not only in main(): click turns Ctrl-C into "Aborted!" before main sees it.
        from mltrail.cli.errors import reported

        with reported():
            return super().invoke(ctx)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"mltrail {__version__}")
        ctx.exit()


@click.group(cls=RootGroup, lazy_commands=COMMANDS, context_settings=_CONTEXT)
@click.option(
    "--store",
    metavar="URI",
    envvar="MLTRAIL_TRACKING_URI",
    show_envvar=True,
    help="Tracking store: sqlite:///path.db, postgresql://…, or a project folder. "
    "Default: the nearest .mltrail folder from here upward.",
)
@click.option(
    "--objects",
    metavar="LOCATION",
    envvar="MLTRAIL_OBJECTS",
    show_envvar=True,
    help="Object store for artifacts, datasets and models: s3://bucket/prefix or a folder. "
    "Default: beside the tracking store.",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the mltrail version and exit.",
)
@click.pass_context
def cli(ctx: click.Context, store: str | None, objects: str | None) -> None:
    """Track experiments, version data, run pipelines and register models.

    Run `mltrail init` in a project folder, log runs from Python with `import mltrail as mt`
    (or describe stages in mltrail.yaml and run `mltrail repro`), then explore them here:
    `mltrail runs ls`, `mltrail runs show RUN`, `mltrail lineage`, or in a browser: `mltrail ui`.
    """
    from mltrail.cli.context import CliState

    ctx.obj = CliState(store=store or None, objects=objects or None)
