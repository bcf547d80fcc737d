"""MLflow's search grammars on mltrail: runs through mltrail's own filter, the rest in Python.

A runs filter in MLflow's grammar is also one in mltrail's (which adds OR, NOT and parentheses);
only MLflow's system tags need translating, since mltrail keeps the run name, user and parent as
fields of the run: ``tags.mlflow.runName = 'x'`` becomes ``attributes.run_name = 'x'``.

Experiments, registered models, model versions and logged models are searched with MLflow's
smaller grammar (comparisons joined by AND) over the listing, then ordered and paged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from mltrail.entities import Experiment, LoggedModel
from mltrail.errors import FilterSyntaxError
from mltrail.mlflow_api import tags as system
from mltrail.search.filter import (
    And,
    Comparison,
    Expr,
    Not,
    Or,
    OrderKey,
    format_filter,
    format_order_key,
    holds,
    parse_conjunction,
    parse_filter,
    parse_order_by,
)

T = TypeVar("T")


# -- runs ----------------------------------------------------------------------------------------


def _field(entity: str, key: str) -> tuple[str, str]:
    if entity == "tag":
        if key in system.FIELDS:
            return "attribute", system.FIELDS[key]
        return "tag", system.to_mltrail(key)
    return entity, key


def _rewrite(expr: Expr) -> Expr:
    if isinstance(expr, Comparison):
        entity, key = _field(expr.entity, expr.key)
        return replace(expr, entity=entity, key=key)
    if isinstance(expr, Not):
        return Not(_rewrite(expr.item))
    if isinstance(expr, And):
        return And(tuple(_rewrite(e) for e in expr.items))
    assert isinstance(expr, Or)
    return Or(tuple(_rewrite(e) for e in expr.items))


def runs_filter(text: str | None) -> str | None:
    """An MLflow runs filter as the mltrail filter that selects the same runs."""
    expr = parse_filter(text)
    return None if expr is None else format_filter(_rewrite(expr))


def runs_order(items: Sequence[str]) -> list[str]:
    """MLflow order-by items as mltrail's."""
    return [
        format_order_key(OrderKey(*_field(k.entity, k.key), k.ascending))
        for k in parse_order_by(list(items))
    ]


# -- the other searches --------------------------------------------------------------------------

#: Per search: attribute name (and aliases) → (canonical name, numeric?).
_Attributes = dict[str, tuple[str, bool]]


def _resolver(attributes: _Attributes, prefixes: dict[str, str]) -> Any:
    def resolve(entity: str | None, key: str) -> tuple[str, str, bool]:
        if entity is None or entity in ("attribute", "attributes", "attr"):
            found = attributes.get(key.lower())
            if found is None:
                raise ValueError(
                    f"invalid attribute key {key!r}; use one of "
                    f"{', '.join(sorted({name for name, _ in attributes.values()}))}"
                )
            return "attribute", found[0], found[1]
        canonical = prefixes.get(entity)
        if canonical is None:
            shown = ", ".join(sorted(set(prefixes)))
            raise ValueError(f"invalid entity {entity!r}; use an attribute or {shown}")
        return canonical, key, canonical == "metric"

    return resolve


def _order_item(text: str, attributes: _Attributes) -> tuple[str, bool]:
    words = text.split()
    if not words or len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
        raise FilterSyntaxError(f"invalid order_by clause {text!r}; use '<attribute> [ASC|DESC]'")
    name = words[0].removeprefix("attributes.").removeprefix("attribute.").strip('`"')
    found = attributes.get(name.lower())
    if found is None:
        raise FilterSyntaxError(
            f"invalid order_by key {words[0]!r}; use one of "
            f"{', '.join(sorted({n for n, _ in attributes.values()}))}"
        )
    return found[0], len(words) == 1 or words[1].upper() == "ASC"


def page(found: list[T], max_results: int, page_token: str | None) -> tuple[list[T], str | None]:
    """One page of ``found`` and the token of the next one (None on the last page)."""
    from mltrail.store.sql import decode_page_token, encode_page_token

    start = decode_page_token(page_token)
    end = start + max_results
    return found[start:end], encode_page_token(end) if end < len(found) else None


@dataclass(frozen=True)
class Listing:
    """What one of MLflow's searches may filter and order on, and how to read it off an item."""

    attributes: _Attributes
    prefixes: dict[str, str]
    default_order: tuple[tuple[str, bool], ...]
    value_of: Callable[[Any, str, str], Any]


def conditions(listing: Listing, filter_string: str | None) -> list[Comparison]:
    """The comparisons of an MLflow filter on this listing (attributes by canonical name)."""
    return parse_conjunction(filter_string, _resolver(listing.attributes, listing.prefixes))


def find(
    listing: Listing,
    items: Sequence[T],
    where: Sequence[Comparison],
    order_by: Sequence[str],
    max_results: int,
    page_token: str | None,
) -> tuple[list[T], str | None]:
    """One page of the ``items`` that satisfy every condition, in order, and the next token.

    Items without a value for an order key come after those with one, in either direction.
    """
    value_of = listing.value_of
    found = [
        item for item in items if all(holds(c, value_of(item, c.entity, c.key)) for c in where)
    ]
    keys = [_order_item(text, listing.attributes) for text in order_by]
    for name, ascending in reversed(keys or listing.default_order):
        present = [i for i in found if value_of(i, "attribute", name) is not None]
        absent = [i for i in found if value_of(i, "attribute", name) is None]
        present.sort(key=lambda i: value_of(i, "attribute", name), reverse=not ascending)
        found = present + absent
    return page(found, max_results, page_token)


_TAGS = {"tags": "tag", "tag": "tag"}


def _tag_or_field(item: Any, entity: str, key: str) -> Any:
    return item.tags.get(key) if entity == "tag" else getattr(item, key)


def _experiment_value(e: Experiment, entity: str, key: str) -> Any:
    # Ids are numbers to MLflow: experiment 10 comes after experiment 9.
    return int(e.experiment_id) if key == "experiment_id" else _tag_or_field(e, entity, key)


EXPERIMENTS = Listing(
    {
        "name": ("name", False),
        "experiment_id": ("experiment_id", True),
        "creation_time": ("creation_time", True),
        "last_update_time": ("last_update_time", True),
    },
    _TAGS,
    (("last_update_time", False), ("experiment_id", True)),
    _experiment_value,
)

REGISTERED_MODELS = Listing(
    {
        "name": ("name", False),
        "creation_timestamp": ("creation_time", True),
        "creation_time": ("creation_time", True),
        "last_updated_timestamp": ("last_update_time", True),
        "last_update_time": ("last_update_time", True),
        "timestamp": ("last_update_time", True),
    },
    _TAGS,
    (("name", True),),
    _tag_or_field,
)

MODEL_VERSIONS = Listing(
    {
        "name": ("name", False),
        "version_number": ("version", True),
        "version": ("version", True),
        "run_id": ("run_id", False),
        "source_path": ("source", False),
        "source": ("source", False),
        "current_stage": ("stage", False),
        "creation_timestamp": ("creation_time", True),
        "last_updated_timestamp": ("last_update_time", True),
    },
    _TAGS,
    (("name", True), ("version", False)),
    _tag_or_field,
)


def _logged_model_value(m: LoggedModel, entity: str, key: str) -> Any:
    from mltrail.mlflow_api.codec import LOGGED_MODEL_STATUS

    if entity == "param":
        return m.params.get(key)
    if entity == "metric":
        return None  # metrics are the source run's; logged models hold none of their own
    if key == "status":
        return LOGGED_MODEL_STATUS.get(m.status, m.status)
    return _tag_or_field(m, entity, key)


LOGGED_MODELS = Listing(
    {
        "name": ("name", False),
        "model_id": ("model_id", False),
        "model_type": ("model_type", False),
        "status": ("status", False),
        "source_run_id": ("run_id", False),
        "creation_timestamp": ("creation_time", True),
        "creation_time": ("creation_time", True),
        "last_updated_timestamp": ("last_update_time", True),
    },
    {**_TAGS, "params": "param", "param": "param", "metrics": "metric", "metric": "metric"},
    (("creation_time", False),),
    _logged_model_value,
)
