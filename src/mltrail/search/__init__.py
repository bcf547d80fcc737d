"""The runs search language: filters and order-by clauses parsed into store-neutral trees."""

from mltrail.search.filter import (
    ATTRIBUTE_KEYS,
    MAX_ORDER_KEYS,
    ORDER_DEFAULT,
    RUN_STATUSES,
    And,
    Comparison,
    Expr,
    Not,
    Or,
    OrderKey,
    parse_filter,
    parse_order_by,
)

__all__ = [
    "ATTRIBUTE_KEYS",
    "MAX_ORDER_KEYS",
    "ORDER_DEFAULT",
    "RUN_STATUSES",
    "And",
    "Comparison",
    "Expr",
    "Not",
    "Or",
    "OrderKey",
    "parse_filter",
    "parse_order_by",
]
