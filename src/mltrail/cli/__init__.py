"""The ``mltrail`` command line.

Commands are grouped by noun (``mltrail exp ls``, ``mltrail runs show``). Each lives in a module
that is imported only when the command runs, and heavy libraries (SQLAlchemy, rich, the tracking
client) are imported inside command bodies, so ``mltrail --help`` and ``--version`` start fast.
This package itself imports nothing: ``mltrail --version`` does not even load click.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from mltrail._version import __version__

if TYPE_CHECKING:
    from mltrail.cli.root import cli

__all__ = ["cli", "main"]


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and exit."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        # The commonest probe of an installed tool: answer it before importing click.
        sys.stdout.write(f"mltrail {__version__}\n")
        raise SystemExit(0)
    from mltrail.cli.root import cli

    _show_warnings_visibly()
    cli.main(args=args, prog_name="mltrail")
    raise SystemExit(0)  # cli.main exits itself in standalone mode; this satisfies NoReturn.


def _show_warnings_visibly() -> None:
    """Python warnings the library raises (a dataset path in one) print control characters
    as visible escapes, like every other line the command line writes."""
    import warnings

    from mltrail.cli.format import visible

    original = warnings.formatwarning
    if getattr(original, "_mltrail_visible", False):
        return

    def formatwarning(*args: Any, **kwargs: Any) -> str:
        return visible(original(*args, **kwargs), multiline=True)

    formatwarning._mltrail_visible = True  # type: ignore[attr-defined]
    warnings.formatwarning = formatwarning


def __getattr__(name: str) -> Any:
    # ``from mltrail.cli import cli`` (tests, docs tooling) loads the command tree on demand.
    if name == "cli":
        from mltrail.cli.root import cli

        return cli
    raise AttributeError(f"module 'mltrail.cli' has no attribute {name!r}")
