"""The one place where exceptions become messages and exit codes.

- ``MltrailError`` (a user mistake or a store problem): ``error: <message>`` and the hint on
  stderr, exit 1, no traceback. A ``FilterSyntaxError`` message carries its caret lines.
- click usage errors: click's own message, exit 2.
- Ctrl-C: exit 130, quietly.
- anything else is a bug: one ``internal error`` line, exit 1; ``MLTRAIL_DEBUG=1`` adds the
  traceback.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import click

from mltrail.cli.format import visible
from mltrail.errors import MltrailError

ENV_DEBUG = "MLTRAIL_DEBUG"

#: Exit code of a command interrupted with Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def debugging() -> bool:
    """True when MLTRAIL_DEBUG asks for tracebacks."""
    return os.environ.get(ENV_DEBUG, "") not in ("", "0", "false", "no")


def print_error(message: str, hint: str | None = None) -> None:
    """Write ``error: message`` and, when there is one, ``hint: hint`` to stderr.

    Messages quote stored names and values: their control characters are shown, not obeyed.
    """
    message = visible(message, multiline=True)
    click.echo(f"{click.style('error:', fg='red', bold=True)} {message}", err=True)
    # A hint of several lines (one per kind of problem) gets the prefix on each.
    for line in visible(hint or "", multiline=True).splitlines():
        click.echo(f"{click.style('hint:', fg='cyan')} {line}", err=True)


def print_warning(message: str) -> None:
    """Write ``warning: message`` to stderr."""
    message = visible(message, multiline=True)
    click.echo(f"{click.style('warning:', fg='yellow', bold=True)} {message}", err=True)


def report(exc: MltrailError) -> None:
    """Print an mltrail error (message and hint) without exiting."""
    print_error(exc.message, exc.hint)


@contextmanager
def reported() -> Iterator[None]:
    """Run a command body, turning every exception into a message and an exit code."""
    try:
        yield
    except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
        # click prints and exits on these itself (usage errors exit 2; a closed pipe, quietly).
        raise
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except MltrailError as exc:
        if debugging():
            traceback.print_exc()
        report(exc)
        raise SystemExit(1) from None
    except Exception as exc:
        if debugging():
            traceback.print_exc()
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        detail = visible(detail, multiline=True)
        click.echo(f"{click.style('internal error:', fg='red', bold=True)} {detail}", err=True)
        if not debugging():
            click.echo(f"run with {ENV_DEBUG}=1 for the traceback", err=True)
        raise SystemExit(1) from None
