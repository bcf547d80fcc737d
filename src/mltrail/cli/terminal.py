"""The rich console, tables and text through which stored text reaches the terminal, shown.

Every rich renderable the CLI prints goes through :class:`SafeConsole`, so an escape sequence,
carriage return, bidi override or ``[link=...]`` in a run name, param, tag, path or
description is printed as visible characters (``\\x1b``, ``\\u202e``, ``[link=...]``) and never
obeyed (see :func:`mltrail.cli.format.visible`). Three layers, so layout stays right and
nothing slips through:

- cells and text are made visible where they are built (:class:`SafeTable` rows, ``render``
  helpers), before rich measures them, so columns get the width of what is shown;
- the console turns every ``str`` it renders into visible text, never markup;
- and, last, it makes visible the text of every segment it renders, except rich's own
  control segments (cursor moves of progress bars), so no renderable built elsewhere can
  put a raw control character on the terminal.

Imported only when something is drawn (rich costs import time).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.table import Table
from rich.text import Span, Text

from mltrail.cli.format import visible


def safe_text(text: Text, multiline: bool = True) -> Text:
    """A copy of ``text`` with its control characters made visible, styles kept on each part.

    Returns ``text`` itself when there is nothing to show differently.
    """
    plain = text.plain
    if visible(plain, multiline) == plain:
        return text
    cuts = sorted({s.start for s in text.spans} | {s.end for s in text.spans})
    result = text.blank_copy()
    for piece in text.divide(cuts):
        shown = visible(piece.plain, multiline)
        spans = [Span(0, len(shown), s.style) for s in piece.spans]
        result.append_text(Text(shown, spans=spans))
    return result


def safe_cell(cell: Any, multiline: bool = False) -> Any:
    """A table cell or key/value shown safely: strings and Texts made visible, others as is.

    A string is one line (a newline in it shows as ``\\n``) unless ``multiline``; a Text keeps
    its line breaks, since the code that built it put them there.
    """
    if isinstance(cell, str):
        return visible(cell, multiline)
    if isinstance(cell, Text):
        return safe_text(cell)
    return cell


class SafeTable(Table):
    """A rich Table whose headers and cells are shown, never obeyed: one line per cell."""

    def add_column(self, header: RenderableType = "", *args: Any, **kwargs: Any) -> None:
        super().add_column(safe_cell(header), *args, **kwargs)

    def add_row(self, *renderables: RenderableType | None, **kwargs: Any) -> None:
        super().add_row(*(safe_cell(cell) for cell in renderables), **kwargs)


class SafeConsole(Console):
    """A rich Console that shows the control characters and markup of what it prints."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        # Never markup or emoji codes: '[link=file:///etc/passwd]' in a run name is text.
        kwargs.update(markup=False, emoji=False)
        return super().render_str(visible(text, multiline=True), **kwargs)

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        if isinstance(renderable, Text):
            renderable = safe_text(renderable)
        for segment in super().render(renderable, options):
            if segment.control is None and segment.text:
                shown = visible(segment.text, multiline=True)
                if shown != segment.text:
                    segment = Segment(shown, segment.style)
            yield segment
