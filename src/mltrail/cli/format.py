"""Plain-text formatting of stored text, times, durations, sizes and metric values, and JSON.

Pure Python with no third-party imports, so every command can use it without import cost.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from datetime import datetime
from typing import Any

import click

#: Shown for a value a run does not have.
MISSING = "—"

_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


#: ASCII characters a terminal would act on instead of showing: C0 controls and DEL.
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: How the commonest controls are spelled when made visible; the rest get a hex escape.
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
#: Invisible format characters kept as they are: the joiner that builds emoji sequences.
_KEPT_FORMAT = frozenset("\u200d")


def visible(text: object, multiline: bool = False) -> str:
    """``text`` safe to print on a terminal: every control character shown, none obeyed.

    Stored text (run names, params, tags, paths, descriptions) may hold escape sequences
    that clear the screen, set the window title, write the clipboard (OSC 52) or fake links
    (OSC 8), carriage returns and backspaces that overwrite what was printed, and bidi
    overrides that reorder it. Each such character becomes a visible escape: ``\\x1b``,
    ``\\x9b`` (C1), ``\\x7f``, ``\\u202e``, ``\\t``, ``\\n``, ``\\r``. That covers the C0 and
    C1 controls, DEL, and every other character Python does not call printable (format
    characters such as bidi controls and zero-width spaces, line and paragraph separators,
    surrogates, unassigned code points), except spaces and the zero-width joiner of emoji.

    With ``multiline``, line breaks (``\\n``, ``\\r\\n``) and tabs are kept, for text that
    is several lines by nature (a run's note, a block of messages); everything else is still
    escaped. Backslashes are left alone, so Windows paths read as they are. A value that is
    not a string (a Path) is shown as its ``str``.
    """
    text = text if isinstance(text, str) else str(text)
    if text.isascii():
        if _ASCII_CONTROL.search(text) is None:
            return text
    elif text.isprintable():
        return text
    if multiline:
        text = text.replace("\r\n", "\n")
    kept = "\n\t" if multiline else ""
    out: list[str] = []
    for ch in text:
        if ch.isprintable() or ch in kept or ch in _KEPT_FORMAT or _is_wide_space(ch):
            out.append(ch)
        else:
            out.append(_NAMED.get(ch) or _escape(ord(ch)))
    return "".join(out)


def _is_wide_space(ch: str) -> bool:
    """A space other than ASCII's (no-break, em, ideographic...): shown as a space, kept."""
    return ord(ch) > 0x9F and ch.isspace() and ch not in "\u2028\u2029"


def _escape(code: int) -> str:
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)


def can_encode(text: str) -> bool:
    """True when stdout's encoding can print ``text`` (it cannot on some ASCII-only consoles)."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def glyph(fancy: str, plain: str) -> str:
    """``fancy`` when the terminal can show it, else the ASCII ``plain``."""
    return fancy if can_encode(fancy) else plain


def missing() -> str:
    """The placeholder for an absent value, in a form stdout can print."""
    return glyph(MISSING, "-")


def when(ms: int | None, now: int | None = None) -> str:
    """A compact start time: ``42s ago``, ``5m ago``, ``3h ago``, ``2d ago``, else a date."""
    if not ms:
        return missing()
    delta = ((now if now is not None else now_ms()) - ms) / 1000
    if 0 <= delta < 60:
        return f"{int(delta)}s ago"
    if 0 <= delta < 3600:
        return f"{int(delta // 60)}m ago"
    if 0 <= delta < 86400:
        return f"{int(delta // 3600)}h ago"
    if 0 <= delta < 7 * 86400:
        return f"{int(delta // 86400)}d ago"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d")


def timestamp(ms: int | None) -> str:
    """A full local time with its UTC offset, to the second."""
    if not ms:
        return missing()
    return datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="seconds")


def clock(ms: int | None) -> str:
    """A local ``YYYY-MM-DD HH:MM:SS.mmm`` time, for metric histories."""
    if not ms:
        return missing()
    moment = datetime.fromtimestamp(ms / 1000)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def duration(ms: int | None) -> str:
    """A compact duration: ``0.4s``, ``42s``, ``3m07s``, ``1h05m``, ``2d03h``."""
    if ms is None:
        return missing()
    seconds = max(ms, 0) / 1000
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def run_duration_ms(
    start: int, end: int | None, running: bool, now: int | None = None
) -> int | None:
    """How long a run took, or has been running; None when it never ended."""
    if end is not None:
        return end - start
    if running:
        return (now if now is not None else now_ms()) - start
    return None


def size(n: int) -> str:
    """A byte count in binary units: ``512 B``, ``1.5 KiB``, ``12.0 MiB``."""
    value = float(n)
    for unit in _SIZE_UNITS:
        if abs(value) < 1024 or unit == _SIZE_UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def number(value: float, digits: int = 6) -> str:
    """A metric value in at most ``digits`` significant digits; NaN and infinities by name."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


#: Widest a fixed-point number column may get before it switches to significant digits.
_FIXED_WIDTH = 12


def number_column(values: list[float | None], digits: int = 6) -> list[str | None]:
    """Format a column of metric values alike: ints if all are, else one number of decimals.

    A lone ``1`` under ``0.955556`` reads as a different kind of value: the whole column gets
    the decimals that show its smallest value to ``digits`` significant digits (``1.000000``),
    or, when that would be too wide, ``digits`` significant digits each (``1.00000e+09``).
    None (a run without the metric) stays None.
    """
    values = [None if v is None else float(v) for v in values]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if all(v.is_integer() and abs(v) < 1e15 for v in finite):
        return [None if v is None else _integral(v) for v in values]
    decimals = max(
        (digits - 1 - math.floor(math.log10(abs(v))) for v in finite if v != 0), default=0
    )
    decimals = max(decimals, 0)
    fixed = [f"{v:.{decimals}f}" for v in finite]
    if decimals <= digits + 2 and max(map(len, fixed)) <= _FIXED_WIDTH:
        return [None if v is None else _fixed(v, decimals) for v in values]
    return [None if v is None else _significant(v, digits) for v in values]


def _integral(v: float) -> str:
    return f"{v:.0f}" if math.isfinite(v) else number(v)


def _fixed(v: float, decimals: int) -> str:
    return f"{v:.{decimals}f}" if math.isfinite(v) else number(v)


def _significant(v: float, digits: int) -> str:
    return f"{v:#.{digits}g}" if math.isfinite(v) else number(v)


def exact(value: float) -> str:
    """A metric value with every digit it has (shortest round-trip form)."""
    if math.isnan(value) or math.isinf(value):
        return number(value)
    return repr(value)


def json_safe(obj: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) with the strings JavaScript would print."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return "NaN"
        if math.isinf(obj):
            return "Infinity" if obj > 0 else "-Infinity"
        return obj
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def echo(message: object = "", err: bool = False) -> None:
    """``click.echo`` of a message that may quote stored text: its control characters shown.

    Line breaks stay (a message may be several lines); quote a one-line stored value with
    :func:`visible` so that a newline in it cannot start a line of its own.
    """
    click.echo(visible(str(message), multiline=True), err=err)


def echo_json(obj: Any) -> None:
    """Print ``obj`` as indented, strictly valid JSON on stdout.

    Values stay exact, and the output is safe on a terminal anyway: ``json.dumps`` escapes
    every control and non-ASCII character (ESC as ``\\u001b``, U+202E as ``\\u202e``).
    """
    click.echo(json.dumps(json_safe(obj), indent=2, default=str, allow_nan=False))
