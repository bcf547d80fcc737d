"""Runs as a table: which columns to show, a run's value in a column, and groups of runs.

``mltrail runs ls`` and the UI's runs table both choose their columns here, so a key that the
CLI shows by default is the one the UI shows by default too. Columns are named as the filter
language names them: ``metrics.KEY``, ``params.KEY``, ``tags.KEY`` or a run attribute
(``run_name``, ``status``, ``start_time``...).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidInput

if TYPE_CHECKING:
    from mltrail.entities import Run

#: Column prefix of each keyed entity of the filter language.
ENTITY_PREFIX = {"metric": "metrics.", "param": "params.", "tag": "tags."}
#: Run attributes a column may name without a prefix.
BASE_FIELDS = ("run_id", "experiment_id", "run_name", "status", "user_id", "start_time",
               "end_time", "lifecycle_stage", "parent_run_id")  # fmt: skip
_PREFIXES = tuple(ENTITY_PREFIX.values())


def bare(key: str) -> str:
    """A column's key without its ``metrics.``/``params.``/``tags.`` prefix."""
    return key.split(".", 1)[1] if key.startswith(_PREFIXES) else key


def value(run: Run, key: str) -> Any:
    """The run's value in column ``key`` (a float, str or int), or None when it has none."""
    entity, _, name = key.partition(".")
    data = run.data
    source = {"metrics": data.metrics, "params": data.params, "tags": data.tags}.get(entity)
    if source is not None:
        return source.get(name)
    return run.to_row().get(key)


@dataclass(frozen=True)
class Keys:
    """The metric, param and tag keys some runs have, each sorted."""

    metrics: list[str]
    params: list[str]
    tags: list[str]


def keys_of(runs: Sequence[Run]) -> Keys:
    """The union of the runs' metric, param and tag keys."""
    return Keys(
        sorted({k for run in runs for k in run.data.metrics}),
        sorted({k for run in runs for k in run.data.params}),
        sorted({k for run in runs for k in run.data.tags}),
    )


def qualify(key: str, runs: Sequence[Run]) -> str:
    """Expand a bare column name (``acc``) to ``metrics.acc``, ``params.acc`` or ``tags.acc``."""
    if key.startswith(_PREFIXES) or key in BASE_FIELDS:
        return key
    for prefix, attr in (("metrics.", "metrics"), ("params.", "params"), ("tags.", "tags")):
        if any(key in getattr(run.data, attr) for run in runs):
            return prefix + key
    raise InvalidInput(
        f"unknown column {key!r}: no listed run has a metric, param or tag called that",
        hint="Name columns as metrics.KEY, params.KEY or tags.KEY.",
    )


def referenced(filter_string: str | None, order_by: Sequence[str]) -> list[str]:
    """Keys the user sorted or filtered on; they are the columns they most want to see."""
    from mltrail.search import And, Comparison, Not, Or, parse_filter, parse_order_by

    keys = [
        ENTITY_PREFIX[k.entity] + k.key
        for k in parse_order_by(list(order_by) or None)
        if k.entity in ENTITY_PREFIX
    ]
    stack: list[Any] = [parse_filter(filter_string)]
    while stack:
        node = stack.pop()
        if isinstance(node, Comparison) and node.entity in ENTITY_PREFIX:
            keys.append(ENTITY_PREFIX[node.entity] + node.key)
        elif isinstance(node, And | Or):
            stack.extend(reversed(node.items))
        elif isinstance(node, Not):
            stack.append(node.item)
    return list(dict.fromkeys(keys))


def candidates(runs: Sequence[Run], wanted: Sequence[str] = ()) -> list[str]:
    """``wanted`` keys first, then metrics and params alternately, most common first."""
    metrics = Counter(k for run in runs for k in run.data.metrics)
    params = Counter(k for run in runs for k in run.data.params)
    distinct = {k: len({run.data.params.get(k) for run in runs}) for k in params}
    by_metric = sorted(metrics, key=lambda k: (-metrics[k], k))
    # Params that differ between the listed runs explain the metrics; constant ones do not.
    by_param = sorted(params, key=lambda k: (distinct[k] == 1, -params[k], k))
    order = list(wanted)
    for i in range(max(len(by_metric), len(by_param))):
        order += [f"metrics.{by_metric[i]}"] if i < len(by_metric) else []
        order += [f"params.{by_param[i]}"] if i < len(by_param) else []
    return list(dict.fromkeys(order))


def default_columns(
    runs: Sequence[Run], wanted: Sequence[str] = (), metrics: int = 8, params: int = 8
) -> list[str]:
    """``wanted`` keys, then up to ``metrics`` metric columns, then up to ``params`` params."""
    order = candidates(runs)
    picked = [k for k in order if k.startswith("metrics.") and k not in wanted][:metrics]
    picked += [k for k in order if k.startswith("params.") and k not in wanted][:params]
    return list(dict.fromkeys([*wanted, *picked]))


@dataclass
class Group:
    """Runs sharing one value of the grouping key, and the mean of each metric column over them."""

    value: str | None
    runs: list[Run] = field(default_factory=list)
    means: dict[str, float | None] = field(default_factory=dict)


def group_runs(runs: Sequence[Run], key: str, metric_columns: Sequence[str] = ()) -> list[Group]:
    """Runs grouped by their value of ``key`` (None: runs without it), in order of first sight.

    Each group's means cover ``metric_columns`` (``metrics.KEY``), over the group's runs that
    have a number there; NaN values are left out, so one diverged run does not blank the mean.
    """
    groups: dict[Any, Group] = {}
    for run in runs:
        found = value(run, key)
        label = None if found is None else str(found)
        groups.setdefault(label, Group(label)).runs.append(run)
    for group in groups.values():
        for column in metric_columns:
            numbers = [
                x
                for x in (value(run, column) for run in group.runs)
                if isinstance(x, int | float) and not math.isnan(x)
            ]
            group.means[column] = sum(numbers) / len(numbers) if numbers else None
    return list(groups.values())
