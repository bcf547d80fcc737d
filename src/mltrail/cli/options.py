"""Options shared by several commands, declared once so they read the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])

#: ``view`` values, as accepted by ``ViewType`` (kept as strings: no import of mltrail.entities).
ACTIVE_ONLY, DELETED_ONLY, ALL = "active_only", "deleted_only", "all"


def json_option(f: F) -> F:
    """``--json``: machine-readable output on stdout."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print JSON (stable keys, full ids) instead of a table.",
    )(f)


def view_options(noun: str) -> Callable[[F], F]:
    """``--deleted`` / ``--all``: which lifecycle stages a listing shows (default: active)."""

    def decorate(f: F) -> F:
        f = click.option(
            "--all",
            "view",
            flag_value=ALL,
            help=f"Show active and deleted {noun}.",
        )(f)
        return click.option(
            "--deleted",
            "view",
            flag_value=DELETED_ONLY,
            help=f"Show only deleted {noun} (restorable).",
        )(f)

    return decorate
