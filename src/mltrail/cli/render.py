"""Tables and sections on the terminal, through rich (imported only when something is drawn).

Everything here shows stored text safely: control characters and rich markup in a cell, key,
value or title are printed visibly, never obeyed (see :mod:`mltrail.cli.terminal`).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

#: Characters between two table columns (one of padding, one of the invisible separator).
COLUMN_GAP = 2
#: Width used when stdout is not a terminal and COLUMNS is not set.
DEFAULT_WIDTH = 80
#: Style of a row or value that differs (runs diff).
DIFF_STYLE = "bold yellow"


@dataclass(frozen=True)
class Column:
    """How one table column is laid out."""

    header: str
    justify: str = "left"
    min_width: int | None = None
    max_width: int | None = None
    style: str | None = None


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a terminal (False for pipes, files and streams a test replaced)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def terminal_width() -> int:
    """The terminal's width; COLUMNS, else 80, when stdout is a pipe or file."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    tty = is_terminal(sys.stdout)
    return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns if tty else DEFAULT_WIDTH


def console(stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr) that shows control characters and markup in data.

    Run names can hold '[' and escape sequences: nothing it prints is read as markup, and
    every control character comes out as a visible escape such as ``\\x1b``.
    """
    from mltrail.cli.terminal import SafeConsole

    if stderr:
        return SafeConsole(stderr=True, markup=False, highlight=False, emoji=False)
    return SafeConsole(
        width=terminal_width(), markup=False, highlight=False, emoji=False, soft_wrap=False
    )


def table(columns: Sequence[Column]) -> Table:
    """A compact table: a header rule, no borders, two spaces between columns, no wrapping."""
    from rich import box

    from mltrail.cli.terminal import SafeTable

    result = SafeTable(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        header_style="bold",
    )
    for col in columns:
        result.add_column(
            col.header,
            justify=col.justify,  # type: ignore[arg-type]
            no_wrap=True,
            overflow="ellipsis",
            min_width=col.min_width,
            max_width=col.max_width,
            style=col.style,
        )
    return result


def styled(text: str, style: str | None = None, multiline: bool = False) -> Any:
    """A rich Text with a style (plain text when styles are off, e.g. in a pipe).

    Control characters in ``text`` are shown as escapes; a line break too, unless
    ``multiline`` (for text such as a run's note).
    """
    from rich.text import Text

    from mltrail.cli.format import visible

    return Text(visible(text, multiline), style=style or "")


def grid(**kwargs: Any) -> Table:
    """A borderless rich grid (``Table.grid``) whose cells are shown safely, one line each."""
    from mltrail.cli.terminal import SafeTable

    return SafeTable.grid(**kwargs)


def table_width(widths: Iterable[int]) -> int:
    """How many characters a table with these column widths occupies."""
    widths = list(widths)
    return sum(widths) + COLUMN_GAP * max(len(widths) - 1, 0)


def key_values(rows: Sequence[tuple[str, Any]], style: str = "dim") -> Table:
    """Two aligned columns, keys on the left; long values fold onto the next line.

    A string value is one line (a newline in it shows as ``\\n``); pass ``styled(value,
    multiline=True)`` for a value whose lines should stay lines.
    """
    result = grid(padding=(0, 2))
    result.add_column(style=style, no_wrap=True, max_width=32, overflow="ellipsis")
    result.add_column(overflow="fold")
    for key, value in rows:
        result.add_row(key, value)
    return result


def section(out: Console, title: str, body: Any = None, empty: str = "none") -> None:
    """A bold title line, then the body indented by two spaces (or ``empty`` dimmed)."""
    from rich.padding import Padding
    from rich.text import Text

    out.print(styled(title, "bold"))
    body = body if body is not None else Text(empty, style="dim")
    out.print(Padding(body, (0, 0, 0, 2), expand=False))
