"""``mltrail runs diff``: two runs' params and metrics side by side, differences marked."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import click

from mltrail.cli import format as fmt
from mltrail.cli.context import get_client
from mltrail.cli.options import json_option

if TYPE_CHECKING:
    from mltrail.entities import Run


@click.command("diff")
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="RUN_B")
@click.option("--only-diff", is_flag=True, help="Show only the keys whose values differ.")
@json_option
def diff_command(run_a: str, run_b: str, only_diff: bool, as_json: bool) -> None:
    """Compare two runs' params and metrics side by side.

    Rows that differ are marked with ≠ and highlighted; a key only one run has shows —.
    """
    client = get_client()
    a = client.get_run(client.resolve_run_id(run_a))
    b = client.get_run(client.resolve_run_id(run_b))
    sections = {
        "params": _rows(a.data.params, b.data.params),
        "metrics": _rows(a.data.metrics, b.data.metrics),
    }
    if only_diff:
        sections = {name: [r for r in rows if r["differs"]] for name, rows in sections.items()}
    if as_json:
        fmt.echo_json({"a": _ident(a), "b": _ident(b), **sections})
        return
    _print(a, b, sections, only_diff)


def _ident(run: Run) -> dict[str, str]:
    return {"run_id": run.run_id, "run_name": run.info.run_name}


def _same(x: Any, y: Any) -> bool:
    # NaN never equals itself, but two runs that both logged NaN do not differ.
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return x == y


def _rows(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"key": key, "a": a.get(key), "b": b.get(key), "differs": not _same(a.get(key), b.get(key))}
        for key in sorted(set(a) | set(b))
    ]


def _text(value: Any) -> str:
    if value is None:
        return fmt.missing()
    return fmt.exact(value) if isinstance(value, float) else str(value)


def _print(a: Run, b: Run, sections: dict[str, list[dict[str, Any]]], only_diff: bool) -> None:
    from mltrail.cli.render import DIFF_STYLE, Column, console, styled, table, terminal_width

    out = console()
    # Key column and both value columns share the width; values get the larger part.
    value_width = max(12, (terminal_width() - 2 - 24 - 3 * 2) // 2)
    marker = fmt.glyph("≠", "*")
    grid = table(
        [
            Column(" ", min_width=1, max_width=1),
            Column("key", max_width=24),
            Column(f"A: {a.info.run_name}", max_width=value_width),
            Column(f"B: {b.info.run_name}", max_width=value_width),
        ]
    )
    differing = 0
    for name, rows in sections.items():
        if not rows:
            continue
        grid.add_row("", styled(name, "bold underline"), "", "")
        for row in rows:
            style = DIFF_STYLE if row["differs"] else None
            differing += row["differs"]
            grid.add_row(
                marker if row["differs"] else "",
                styled(row["key"], style),
                styled(_text(row["a"]), style),
                styled(_text(row["b"]), style),
            )
    if not any(sections.values()):
        out.print("No differences." if only_diff else "Neither run has params or metrics.")
        return
    out.print(styled(f"A = {a.run_id}  {a.info.run_name}", "dim"))
    out.print(styled(f"B = {b.run_id}  {b.info.run_name}", "dim"))
    out.print(grid)
    total = sum(len(rows) for rows in sections.values())
    summary = f"{differing} of {total} keys differ" if not only_diff else f"{differing} keys differ"
    out.print(styled(summary, "dim"))
