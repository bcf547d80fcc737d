"""Keys a search names that no run has: a typo such as ``metrics.acuracy`` said as one, not as
"no runs found".

A filter on a metric, param or tag that no run of the searched experiments has can never match,
and a sort on one sorts nothing; both are almost always a typo. :func:`check_search_keys` is the
one place that decides it: ``mltrail runs ls`` calls it, and any other face can. It asks the
store only when the search already looks wrong (no runs found, or a sort key none of the found
runs has), so an ordinary search costs nothing more.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mltrail.errors import InvalidInput
from mltrail.search.filter import (
    And,
    Comparison,
    Not,
    Or,
    format_filter,
    parse_filter,
    parse_order_by,
)

#: The entities whose keys runs choose (attributes always exist).
_PLURAL = {"metric": "metrics", "param": "params", "tag": "tags"}
#: Runs whose keys are gathered for suggestions (the newest ones).
_SAMPLE = 1000
#: Existing keys listed in the hint when none is close to the typo.
_LISTED = 8


class RunSearcher(Protocol):
    """What :func:`check_search_keys` needs: a client's or a store's ``search_runs``."""

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        view: Any = ...,
    ) -> Sequence[Any]: ...


@dataclass(frozen=True)
class UnknownKey:
    """A metric, param or tag key that a search names and no searched run has."""

    entity: str
    key: str
    #: The nearest existing key, as ``metrics.accuracy``; "" if none is close.
    suggestion: str
    #: Keys of the same entity that runs do have (sorted), to list when nothing is close.
    existing: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The key as the filter language writes it, e.g. ``metrics.acuracy``."""
        return f"{_PLURAL[self.entity]}.{self.key}"


def check_search_keys(
    client: RunSearcher,
    experiment_ids: Sequence[str],
    filter_string: str | None,
    order_by: Sequence[str] | None,
    view: Any,
    found: Sequence[Any],
) -> None:
    """Raise InvalidInput naming the filter/sort keys no run has (and the nearest existing ones).

    ``found`` is what the search returned; nothing is asked of the store unless it is empty (for
    filter keys) or lacks a sort key entirely.
    """
    unknown = unknown_keys(client, experiment_ids, filter_string, order_by, view, found)
    if not unknown:
        return
    names = " or ".join(u.name for u in unknown)
    guesses = [u.suggestion for u in unknown if u.suggestion]
    if guesses:
        hint = f"Did you mean {', '.join(guesses)}?"
    else:
        u = unknown[0]
        # The user's own keys first: every run carries a few system tags (mltrail.*).
        existing = sorted(u.existing, key=lambda k: k.startswith("mltrail."))
        shown = ", ".join(existing[:_LISTED]) + (", …" if len(existing) > _LISTED else "")
        plural = _PLURAL[u.entity]
        hint = f"The runs have these {plural}: {shown}." if shown else f"No run has any {plural}."
    raise InvalidInput(f"no run in the searched experiments has {names}", hint=hint)


def unknown_keys(
    client: RunSearcher,
    experiment_ids: Sequence[str],
    filter_string: str | None,
    order_by: Sequence[str] | None,
    view: Any,
    found: Sequence[Any],
) -> list[UnknownKey]:
    """Return the metric/param/tag keys of the filter or sort that no searched run has."""
    suspects: list[tuple[str, str]] = []
    if not found:
        suspects += _filter_keys(filter_string)
    for k in parse_order_by(list(order_by) if order_by else None):
        if k.entity in _PLURAL and not any(_has(run, k.entity, k.key) for run in found):
            suspects.append((k.entity, k.key))
    suspects = list(dict.fromkeys(suspects))
    if not suspects:
        return []
    missing = [
        (entity, key)
        for entity, key in suspects
        # Positional: a client names the view run_view_type, a store names it view.
        if not client.search_runs(
            list(experiment_ids),
            format_filter(Comparison(entity, key, "IS NOT NULL", None)),
            None,
            1,
            None,
            view,
        )
    ]
    if not missing:
        return []
    sample = client.search_runs(list(experiment_ids), None, None, _SAMPLE, None, view)
    if not sample:
        return []  # no runs at all: "no runs found" is the whole truth
    known = {
        entity: sorted({k for run in sample for k in _keys(run, entity)}) for entity in _PLURAL
    }
    return [
        UnknownKey(entity, key, _nearest(entity, key, known), tuple(known[entity]))
        for entity, key in missing
    ]


def _filter_keys(filter_string: str | None) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    stack: list[Any] = [parse_filter(filter_string)]
    while stack:
        node = stack.pop()
        if isinstance(node, Comparison) and node.entity in _PLURAL:
            keys.append((node.entity, node.key))
        elif isinstance(node, And | Or):
            stack.extend(reversed(node.items))
        elif isinstance(node, Not):
            stack.append(node.item)
    return keys


def _keys(run: Any, entity: str) -> Any:
    return getattr(run.data, _PLURAL[entity])


def _has(run: Any, entity: str, key: str) -> bool:
    return key in _keys(run, entity)


def _nearest(entity: str, key: str, known: dict[str, list[str]]) -> str:
    # The same key under another entity (params.accuracy for a metric) is the likeliest slip.
    for other in _PLURAL:
        if other != entity and key in known[other]:
            return f"{_PLURAL[other]}.{key}"
    close = difflib.get_close_matches(key, known[entity], n=1, cutoff=0.6)
    if close:
        return f"{_PLURAL[entity]}.{close[0]}"
    for other in _PLURAL:
        close = difflib.get_close_matches(key, known[other], n=1, cutoff=0.8)
        if other != entity and close:
            return f"{_PLURAL[other]}.{close[0]}"
    return ""


__all__ = ["RunSearcher", "UnknownKey", "check_search_keys", "unknown_keys"]
