"""MLflow's search grammars on mltrail: runs through mltrail's own filter, the rest in Python.

A runs filter in MLflow's grammar is also one in mltrail's (which adds OR, NOT and parentheses);
only MLflow's system tags need translating, since mltrail keeps the run name, user and parent as
fields of the run: ``tags.mlflow.runName = 'x'`` becomes ``attributes.run_name = 'x'``.

Experiments, registered models, model versions and logged models are searched with MLflow's
smaller grammar (comparisons joined by AND) over the listing, then ordered and paged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from mltrail.entities import Experiment, LoggedModel, ModelVersion, RegisteredModel
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


def _select(
    items: Sequence[T],
    filter_string: str | None,
    order_by: Sequence[str],
    default_order: Sequence[tuple[str, bool]],
    attributes: _Attributes,
    prefixes: dict[str, str],
    value_of: Callable[[T, str, str], Any],
) -> list[T]:
    """The items that satisfy the filter, in order (missing values last)."""
    conditions = parse_conjunction(filter_string, _resolver(attributes, prefixes))
    found = [
        item for item in items if all(holds(c, value_of(item, c.entity, c.key)) for c in conditions)
    ]
    keys = [_order_item(text, attributes) for text in order_by] or list(default_order)
    for name, ascending in reversed(keys):
        present = [i for i in found if value_of(i, "attribute", name) is not None]
        absent = [i for i in found if value_of(i, "attribute", name) is None]
        present.sort(key=lambda i: value_of(i, "attribute", name), reverse=not ascending)
        found = present + absent
    return found


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


_EXPERIMENT_ATTRS: _Attributes = {
    "name": ("name", False),
    "experiment_id": ("experiment_id", True),
    "creation_time": ("creation_time", True),
    "last_update_time": ("last_update_time", True),
}
_TAGS = {"tags": "tag", "tag": "tag"}


def experiments(
    items: Sequence[Experiment],
    filter_string: str | None,
    order_by: Sequence[str],
    max_results: int,
    page_token: str | None,
) -> tuple[list[Experiment], str | None]:
    """MLflow's experiments/search over a listing."""

    def value_of(e: Experiment, entity: str, key: str) -> Any:
        if entity == "tag":
            return e.tags.get(key)
        # Ids are numbers to MLflow: experiment 10 comes after experiment 9.
        return int(e.experiment_id) if key == "experiment_id" else getattr(e, key)

    found = _select(
        items,
        filter_string,
        order_by,
        [("last_update_time", False), ("experiment_id", True)],
        _EXPERIMENT_ATTRS,
        _TAGS,
        value_of,
    )
    return page(found, max_results, page_token)


_MODEL_ATTRS: _Attributes = {
    "name": ("name", False),
    "creation_timestamp": ("creation_time", True),
    "creation_time": ("creation_time", True),
    "last_updated_timestamp": ("last_update_time", True),
    "last_update_time": ("last_update_time", True),
    "timestamp": ("last_update_time", True),
}


def registered_models(
    items: Sequence[RegisteredModel],
    filter_string: str | None,
    order_by: Sequence[str],
    max_results: int,
    page_token: str | None,
) -> tuple[list[RegisteredModel], str | None]:
    """MLflow's registered-models/search over a listing."""
    found = _select(
        items,
        filter_string,
        order_by,
        [("name", True)],
        _MODEL_ATTRS,
        _TAGS,
        lambda m, entity, key: m.tags.get(key) if entity == "tag" else getattr(m, key),
    )
    return page(found, max_results, page_token)


_VERSION_ATTRS: _Attributes = {
    "name": ("name", False),
    "version_number": ("version", True),
    "version": ("version", True),
    "run_id": ("run_id", False),
    "source_path": ("source", False),
    "source": ("source", False),
    "current_stage": ("stage", False),
    "creation_timestamp": ("creation_time", True),
    "last_updated_timestamp": ("last_update_time", True),
}


def model_versions(
    items: Sequence[ModelVersion],
    filter_string: str | None,
    order_by: Sequence[str],
    max_results: int,
    page_token: str | None,
) -> tuple[list[ModelVersion], str | None]:
    """MLflow's model-versions/search over a listing."""
    found = _select(
        items,
        filter_string,
        order_by,
        [("name", True), ("version", False)],
        _VERSION_ATTRS,
        _TAGS,
        lambda mv, entity, key: mv.tags.get(key) if entity == "tag" else getattr(mv, key),
    )
    return page(found, max_results, page_token)


_LOGGED_MODEL_ATTRS: _Attributes = {
    "name": ("name", False),
    "model_id": ("model_id", False),
    "model_type": ("model_type", False),
    "status": ("status", False),
    "source_run_id": ("run_id", False),
    "creation_timestamp": ("creation_time", True),
    "creation_time": ("creation_time", True),
    "last_updated_timestamp": ("last_update_time", True),
}


def logged_models(
    items: Sequence[LoggedModel],
    filter_string: str | None,
    order_by: Sequence[str],
    max_results: int,
    page_token: str | None,
) -> tuple[list[LoggedModel], str | None]:
    """MLflow's logged-models/search over a listing."""
    from mltrail.mlflow_api.codec import LOGGED_MODEL_STATUS_IN

    def value_of(m: LoggedModel, entity: str, key: str) -> Any:
        if entity == "tag":
            return m.tags.get(key)
        if entity == "param":
            return m.params.get(key)
        if entity == "metric":
            return None  # metrics are the source run's; logged models hold none of their own
        if key == "status":
            return {v: k for k, v in LOGGED_MODEL_STATUS_IN.items()}.get(m.status, m.status)
        return getattr(m, key)

    found = _select(
        items,
        filter_string,
        order_by,
        [("creation_time", False)],
        _LOGGED_MODEL_ATTRS,
        {**_TAGS, "params": "param", "param": "param", "metrics": "metric", "metric": "metric"},
        value_of,
    )
    return page(found, max_results, page_token)
