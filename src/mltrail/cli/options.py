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


def listen_options(port: int, workers_help: str) -> Callable[[F], F]:
    """``--host``, ``--port`` and ``--workers`` of a command that serves HTTP."""

    def decorate(f: F) -> F:
        f = workers_option(workers_help)(f)
        f = port_option(port)(f)
        return click.option(
            "--host",
            default="127.0.0.1",
            show_default=True,
            help="Address to listen on; 0.0.0.0 for every interface (put a TLS proxy in front).",
        )(f)

    return decorate


def port_option(
    default: int, help: str = "Port to listen on (0: any free port)."
) -> Callable[[F], F]:
    """``--port``: a TCP port, 0 for any free one."""
    return click.option(
        "--port", default=default, show_default=True, type=click.IntRange(0, 65535), help=help
    )


def workers_option(help: str) -> Callable[[F], F]:
    """``--workers``: server processes sharing the port."""
    return click.option(
        "--workers", default=1, show_default=True, type=click.IntRange(1, 256), help=help
    )
