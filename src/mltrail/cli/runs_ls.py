"""``mltrail runs ls``: search runs and show them as a table that fits the terminal."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from mltrail.cli import format as fmt
from mltrail.cli.context import get_client
from mltrail.cli.options import ACTIVE_ONLY, json_option, view_options

if TYPE_CHECKING:
    from mltrail.entities import Run
    from mltrail.tracking.client import MltrailClient
    from mltrail.tracking.liveness import Shown

#: Runs fetched per search call when --limit asks for more.
PAGE_SIZE = 1000
#: Widest an automatically chosen metric/param column gets; longer values are ellipsized.
MAX_EXTRA_WIDTH = 14
#: Widest a column named with --columns gets.
MAX_EXPLICIT_WIDTH = 30
#: Most metric/param columns chosen automatically, however wide the terminal.
MAX_AUTO_COLUMNS = 8
#: Name column: its natural width up to NAME_MAX; to make room for metric and param columns it
#: may shrink to NAME_MIN (enough for generated names like "brave-otter-417"), or further to
#: NAME_MIN_EXPLICIT for columns asked for by name.
NAME_MAX, NAME_MIN, NAME_MIN_EXPLICIT = 24, 16, 12

_STATUS_STYLE = {"RUNNING": "cyan", "FINISHED": "green", "FAILED": "red", "KILLED": "magenta"}


@click.command("ls")
@click.option(
    "-e",
    "--experiment",
    "experiments",
    multiple=True,
    metavar="NAME_OR_ID",
    help="Only runs of this experiment (repeatable). Default: every active experiment.",
)
@click.option(
    "-f",
    "--filter",
    "filter_string",
    metavar="TEXT",
    help="Filter, e.g. \"metrics.acc > 0.9 and params.optimizer = 'adam'\".",
)
@click.option(
    "-s",
    "--sort",
    "order_by",
    multiple=True,
    metavar="KEY",
    help="Sort key, e.g. -metrics.acc or 'metrics.acc DESC' (repeatable, up to 10 keys). "
    "Default: newest first.",
)
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    default=50,
    show_default=True,
    help="Show at most this many runs.",
)
@click.option(
    "-c",
    "--columns",
    multiple=True,
    metavar="KEYS",
    help="Comma-separated extra columns, e.g. metrics.acc,params.depth (repeatable). "
    "Default: the metrics and params that fit.",
)
@view_options("runs")
@json_option
def ls_command(
    experiments: tuple[str, ...],
    filter_string: str | None,
    order_by: tuple[str, ...],
    limit: int,
    columns: tuple[str, ...],
    view: str | None,
    as_json: bool,
) -> None:
    """List runs, newest first, with the metrics and params that fit."""
    client = get_client()
    view = view or ACTIVE_ONLY
    exp_names = _experiment_names(client, experiments, view)
    runs, more = _search(client, list(exp_names), filter_string, list(order_by), limit, view)
    from mltrail.search.keys import check_search_keys

    # A typo'd key (metrics.acuracy) is an error with the nearest key, not "No runs found."
    check_search_keys(client, list(exp_names), filter_string, list(order_by), view, runs)
    if as_json:
        from mltrail.tracking.liveness import shown_row

        fmt.echo_json([shown_row(run) for run in runs])
        return
    if not runs:
        fmt.echo("No runs found.")
        return
    requested = [c.strip() for group in columns for c in group.split(",") if c.strip()]
    _print(runs, exp_names, requested, filter_string, order_by, more, limit)


def _experiment_names(client: MltrailClient, refs: Sequence[str], view: str) -> dict[str, str]:
    if refs:
        found = [client.resolve_experiment(ref) for ref in refs]
        deleted = [e.name for e in found if e.lifecycle_stage == "deleted"]
        if deleted and view == ACTIVE_ONLY:
            from mltrail.cli.errors import print_warning

            # Its runs went to the bin with it; an empty table alone would be puzzling.
            print_warning(
                f"experiment {', '.join(map(repr, deleted))} is deleted; its runs show with "
                "--deleted or --all"
            )
    else:
        # Deleted runs usually sit in deleted experiments, so those views search them all.
        found = client.list_experiments(ACTIVE_ONLY if view == ACTIVE_ONLY else "all")
    return {exp.experiment_id: exp.name for exp in found}


def _search(
    client: MltrailClient,
    experiment_ids: list[str],
    filter_string: str | None,
    order_by: list[str],
    limit: int,
    view: str,
) -> tuple[list[Run], bool]:
    """Up to ``limit`` runs, following page tokens; and whether more runs match."""
    runs: list[Run] = []
    token: str | None = None
    while len(runs) < limit:
        page = client.search_runs(
            experiment_ids,
            filter_string or None,
            order_by or None,
            max_results=min(limit - len(runs), PAGE_SIZE),
            page_token=token,
            run_view_type=view,
        )
        runs.extend(page)
        token = page.next_page_token
        if not token or not page:
            break
    return runs, token is not None


@dataclass
class _Col:
    """One table column: its cells and the width it will get."""

    header: str
    cells: list[Any]
    justify: str = "left"
    cap: int = 1000
    min_width: int = 0
    key: str | None = None
    width: int = field(init=False)

    def __post_init__(self) -> None:
        # Shown as they will print (an escape sequence as '\\x1b[2J'), so widths are right.
        self.header = fmt.visible(self.header)
        self.cells = [fmt.visible(c) if isinstance(c, str) else c for c in self.cells]
        natural = max(len(self.header), *(len(str(c)) for c in self.cells))
        self.width = min(natural, self.cap)
        self.min_width = min(self.min_width or self.width, self.width)


def _cells(runs: list[Run], key: str) -> list[str]:
    from mltrail.tracking import table as runs_table  # here: `runs --help` stays light

    found = [runs_table.value(run, key) for run in runs]
    if key.startswith("metrics."):
        # One format per column: `1` beside `0.955556` reads as another kind of value.
        found = fmt.number_column(found)
    return [fmt.missing() if v is None else str(v) for v in found]


def _print(
    runs: list[Run],
    exp_names: dict[str, str],
    requested: list[str],
    filter_string: str | None,
    order_by: Sequence[str],
    more: bool,
    limit: int,
) -> None:
    from mltrail.cli.errors import print_warning
    from mltrail.cli.render import Column, console, styled, table, terminal_width
    from mltrail.tracking import table as runs_table  # here: `runs --help` stays light

    now = fmt.now_ms()
    explicit = bool(requested)
    keys = (
        [runs_table.qualify(k, runs) for k in requested]
        if explicit
        else runs_table.candidates(runs, runs_table.referenced(filter_string, order_by))
    )
    width = terminal_width()
    base = _base_columns(runs, exp_names, now)
    if explicit:
        base[1].min_width = min(base[1].width, NAME_MIN_EXPLICIT)
    chosen, dropped = _fit(base, _extra_columns(runs, keys, explicit), width, explicit)

    out = table([Column(c.header, justify=c.justify, max_width=c.width) for c in (*base, *chosen)])
    for i in range(len(runs)):
        out.add_row(*(c.cells[i] for c in (*base, *chosen)))
    con = console()
    con.print(out)

    if more:
        con.print(styled(f"first {limit} runs shown; more match (raise --limit)", "dim"))
    if dropped and explicit:
        print_warning(
            f"{len(dropped)} column(s) did not fit in {width} characters: "
            f"{', '.join(c.key or c.header for c in dropped)} (use --json, or a wider terminal)"
        )
    elif dropped:
        con.print(styled(f"{len(dropped)} more metric/param columns: pick with --columns", "dim"))


def _base_columns(runs: list[Run], exp_names: dict[str, str], now: int) -> list[_Col]:
    """id, name, [experiment], status, started, duration."""
    from mltrail.cli.render import styled
    from mltrail.tracking.liveness import shown

    # Once per run: on the run's host it asks the kernel about the run's process.
    seen = [shown(run, now) for run in runs]
    statuses = [
        "DELETED" if run.info.lifecycle_stage == "deleted" else s.status
        for run, s in zip(runs, seen, strict=True)
    ]
    cols = [
        _Col("id", [run.run_id[:8] for run in runs]),
        _Col("name", [run.info.run_name for run in runs], cap=NAME_MAX, min_width=NAME_MIN),
    ]
    if len({run.info.experiment_id for run in runs}) > 1:
        names = [exp_names.get(r.info.experiment_id, r.info.experiment_id) for r in runs]
        cols.append(_Col("experiment", names, cap=12, key="experiment"))
    status = _Col("status", statuses)
    status.cells = [styled(s, _STATUS_STYLE.get(s, "dim")) for s in statuses]
    return [
        *cols,
        status,
        _Col("started", [fmt.when(run.info.start_time, now) for run in runs], key="started"),
        _Col(
            "duration",
            [_duration(run, s, now) for run, s in zip(runs, seen, strict=True)],
            justify="right",
            key="duration",
        ),
    ]


def _extra_columns(runs: list[Run], keys: list[str], explicit: bool) -> list[_Col]:
    """A column per key; headers are bare keys unless a metric and a param (say) share one."""
    from mltrail.tracking import table as runs_table  # here: `runs --help` stays light

    keys = list(dict.fromkeys(keys))
    bare_counts = Counter(runs_table.bare(k) for k in keys)
    return [
        _Col(
            runs_table.bare(key) if bare_counts[runs_table.bare(key)] == 1 else key,
            _cells(runs, key),
            justify="right" if key.startswith("metrics.") else "left",
            cap=MAX_EXPLICIT_WIDTH if explicit else MAX_EXTRA_WIDTH,
            min_width=8,
            key=key,
        )
        for key in keys
    ]


def _fit(
    base: list[_Col], extras: list[_Col], width: int, explicit: bool
) -> tuple[list[_Col], list[_Col]]:
    """Choose the extra columns that fit in ``width``; may narrow or drop base columns."""
    _fit_base(base, width)
    if explicit:
        return _fit_explicit(base, extras, width)
    return _fit_auto(base, extras, width)


def _fit_base(base: list[_Col], width: int) -> None:
    """On a very narrow terminal, drop the least useful fixed columns, then squeeze the name."""
    from mltrail.cli.render import table_width

    for key in ("experiment", "duration", "started"):
        if table_width(c.width for c in base) <= width:
            break
        base[:] = [c for c in base if c.key != key]
    name = base[1]
    over = table_width(c.width for c in base) - width
    if over > 0:
        name.width = max(name.width - over, 4)
        name.min_width = min(name.min_width, name.width)


def _fit_auto(base: list[_Col], extras: list[_Col], width: int) -> tuple[list[_Col], list[_Col]]:
    """Add columns in priority order while they fit.

    The first two may squeeze the name column and be narrowed to their minimum; the first may
    also push out the experiment column (one metric is worth it, a second is not). Later ones
    only go in at their natural width, so a wide terminal shows more columns, not tiny ones.
    """
    from mltrail.cli.render import COLUMN_GAP, table_width

    chosen: list[_Col] = []
    dropped: list[_Col] = []
    for extra in extras:
        if len(chosen) >= MAX_AUTO_COLUMNS:
            dropped.append(extra)
            continue
        need = table_width(c.width for c in (*base, *chosen, extra)) - width
        if need > 0 and len(chosen) < 2:
            name = base[1]
            exp = next((c for c in base if c.key == "experiment"), None) if not chosen else None
            squeeze = name.width - name.min_width
            slack = squeeze + (exp.width + COLUMN_GAP if exp else 0)
            if need <= slack + extra.width - extra.min_width:
                name.width -= min(need, squeeze)
                need -= min(need, squeeze)
                if need > 0 and exp is not None:
                    base.remove(exp)
                    need -= exp.width + COLUMN_GAP
                if need > 0:
                    extra.width -= need
                need = 0
        if need > 0:
            dropped.append(extra)
            continue
        chosen.append(extra)
    return chosen, dropped


def _fit_explicit(
    base: list[_Col], extras: list[_Col], width: int
) -> tuple[list[_Col], list[_Col]]:
    """Fit every requested column if at all possible.

    Squeeze the name; if narrowing the requested columns to their minimum would still not be
    enough, give up the experiment, duration and started columns, in that order; narrow the
    widest columns; only then drop requested columns from the end.
    """
    from mltrail.cli.render import table_width

    chosen = list(extras)
    dropped: list[_Col] = []

    def over() -> int:
        return table_width(c.width for c in (*base, *chosen)) - width

    name = base[1]
    natural = name.width
    name.width -= min(max(over(), 0), name.width - name.min_width)
    for key in ("experiment", "duration", "started"):
        if over() > sum(c.width - c.min_width for c in chosen):
            base[:] = [c for c in base if c.key != key]
    while over() > 0:
        widest = max(chosen, key=lambda c: c.width - c.min_width, default=None)
        if widest is not None and widest.width > widest.min_width:
            widest.width -= 1
        elif chosen:
            dropped.insert(0, chosen.pop())
        else:
            break
    # Dropping a whole column may have freed more than the squeeze took; give it back.
    name.width = min(natural, name.width + max(-over(), 0))
    return chosen, dropped


def _duration(run: Run, seen: Shown, now: int) -> str:
    return fmt.duration(fmt.run_duration_ms(run.info.start_time, seen.end_time, seen.running, now))
