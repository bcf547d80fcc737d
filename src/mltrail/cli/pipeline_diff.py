"""``mltrail params diff`` and ``mltrail metrics diff``: two revisions' values, key by key."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from mltrail.cli import format as fmt
from mltrail.cli.options import json_option

if TYPE_CHECKING:
    from mltrail.pipeline.compare import Comparison, KeyChange

#: Column widths that keep a row within 80 columns: the values share what is left.
_PATH_WIDTH = 18
_KEY_WIDTH = 22
_CHANGE_WIDTH = 10


@click.group("params")
def params_group() -> None:
    """Compare pipeline params between Git revisions."""


@click.group("metrics")
def metrics_group() -> None:
    """Compare pipeline metrics between Git revisions."""


def _diff_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = json_option(f)
    f = click.option("--md", is_flag=True, help="Print a Markdown table (for PRs and reports).")(f)
    f = click.option(
        "-a", "--all", "show_all", is_flag=True, help="Include keys that did not change."
    )(f)
    f = click.argument("b_rev", required=False, metavar="[B_REV]")(f)
    return click.argument("a_rev", default="HEAD", metavar="[A_REV]")(f)


@params_group.command("diff")
@_diff_options
def params_diff_command(
    a_rev: str, b_rev: str | None, show_all: bool, md: bool, as_json: bool
) -> None:
    """Show how params changed between A_REV (default HEAD) and B_REV (default: working tree).

    Reads params.yaml and every params file mltrail.yaml names, on both sides; nested keys are
    shown flattened (train.max_depth). A file missing on one side shows its keys as added or
    deleted.

    \b
    Examples:
      mltrail params diff                 # HEAD against the working tree
      mltrail params diff v1.0 main --all
      mltrail params diff HEAD~1 --json
    """
    from mltrail.pipeline.compare import params_diff

    _show(params_diff(a_rev, b_rev), show_all, md, as_json)


@metrics_group.command("diff")
@_diff_options
def metrics_diff_command(
    a_rev: str, b_rev: str | None, show_all: bool, md: bool, as_json: bool
) -> None:
    """Show how metrics changed between A_REV (default HEAD) and B_REV (default: working tree).

    Reads every metrics file (JSON or YAML) listed under the stages' metrics: in mltrail.yaml
    (and its top-level metrics: list), on both sides; nested keys are flattened. Change is
    new - old for numbers.

    \b
    Examples:
      mltrail metrics diff                # HEAD against the working tree
      mltrail metrics diff main experiment-branch
      mltrail metrics diff HEAD~1 --md
    """
    from mltrail.pipeline.compare import metrics_diff

    _show(metrics_diff(a_rev, b_rev), show_all, md, as_json)


# -- output ----------------------------------------------------------------------------------------


def _text(value: Any, kind: str) -> str:
    from mltrail.pipeline.compare import ABSENT

    if value is ABSENT:
        return fmt.missing()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return fmt.number(value) if kind == "metrics" else fmt.exact(value)
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def _change(c: KeyChange) -> str:
    delta = c.change
    if delta is None:
        return fmt.missing()
    if delta == 0:
        return "0"
    return ("+" if delta > 0 else "") + fmt.number(float(delta))


def _show(result: Comparison, show_all: bool, md: bool, as_json: bool) -> None:
    if as_json:
        fmt.echo_json(result.to_dict(all=show_all))
        return
    rows = [c for c in result.changes if show_all or c.state != "unchanged"]
    old_label = result.a_rev
    new_label = result.b_rev if result.b_rev is not None else "workspace"
    new_side = result.b_rev if result.b_rev is not None else "the working tree"
    if not result.files or not result.changes:
        if result.kind == "metrics" and not result.files:
            fmt.echo(
                "No metrics files: list them under a stage's `metrics:` in mltrail.yaml "
                f"(at {old_label} or {'at ' + new_side if result.b_rev else 'in ' + new_side})."
            )
        else:
            fmt.echo(f"No {result.kind} found in {', '.join(result.files)}.")
        return
    if not rows:
        fmt.echo(f"No {result.kind} changed between {old_label} and {new_side}.")
        return
    metrics = result.kind == "metrics"
    header = ["Path", "Param" if not metrics else "Metric", old_label, new_label]
    if metrics:
        header.append("Change")
    table = [
        [c.path, c.key, _text(c.old, result.kind), _text(c.new, result.kind)]
        + ([_change(c)] if metrics else [])
        for c in rows
    ]
    if md:
        _markdown(header, table)
    else:
        _terminal(header, table, metrics)


def _markdown(header: list[str], rows: list[list[str]]) -> None:
    def cell(text: str) -> str:
        return fmt.visible(text).replace("|", "\\|")

    fmt.echo("| " + " | ".join(cell(h) for h in header) + " |")
    fmt.echo("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        fmt.echo("| " + " | ".join(cell(v) for v in row) + " |")


def _terminal(header: list[str], rows: list[list[str]], metrics: bool) -> None:
    from mltrail.cli.render import Column, console, table, terminal_width

    fixed = _PATH_WIDTH + _KEY_WIDTH + (_CHANGE_WIDTH if metrics else 0)
    gaps = 2 * (len(header) - 1)
    value_width = max(8, (terminal_width() - fixed - gaps) // 2)
    columns = [
        Column(header[0], max_width=_PATH_WIDTH),
        Column(header[1], max_width=_KEY_WIDTH),
        Column(header[2], max_width=value_width),
        Column(header[3], max_width=value_width),
    ]
    if metrics:
        columns.append(Column(header[4], justify="right", max_width=_CHANGE_WIDTH))
    grid = table(columns)
    for row in rows:
        grid.add_row(*row)
    console().print(grid)
