"""``fmt.visible`` and the rich pieces built on it: stored text shown, never obeyed."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mltrail.cli import format as fmt


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain name", "plain name"),
        ("\x1b[2Jred", "\\x1b[2Jred"),
        ("\x1b]8;;https://x/\x1b\\a\x1b]8;;\x1b\\", "\\x1b]8;;https://x/\\x1b\\a\\x1b]8;;\\x1b\\"),
        ("\x1b]52;c;aGk=\x07", "\\x1b]52;c;aGk=\\x07"),
        ("safe\rEVIL", "safe\\rEVIL"),
        ("abc\b\bx", "abc\\x08\\x08x"),
        ("a\x00b\x7fc", "a\\x00b\\x7fc"),
        ("\x9b31m\x85", "\\x9b31m\\x85"),
        ("\u202egnp.exe", "\\u202egnp.exe"),
        ("\u2066x\u2069\u200e\u061c", "\\u2066x\\u2069\\u200e\\u061c"),
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("line\u2028sep", "line\\u2028sep"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("one\ntwo\tthree", "one\\ntwo\\tthree"),
        ("[bold red]x[/]", "[bold red]x[/]"),  # markup is the console's business
        ("café 東京 🙂 👨\u200d👩\u200d👧 a\u00a0b", "café 東京 🙂 👨\u200d👩\u200d👧 a\u00a0b"),
        ("C:\\data\\x", "C:\\data\\x"),
    ],
)
def test_visible(text: str, shown: str):
    assert fmt.visible(text) == shown


def test_multiline_keeps_line_breaks_and_tabs_only():
    assert fmt.visible("a\r\nb\n\tc\rd\x1b", multiline=True) == "a\nb\n\tc\\rd\\x1b"


def test_not_a_string_is_shown_as_its_str():
    from pathlib import PurePosixPath

    assert fmt.visible(PurePosixPath("data/x\x1b")) == "data/x\\x1b"


@given(st.text())
def test_visible_output_is_printable_and_idempotent(text: str):
    shown = fmt.visible(text)
    assert all(ch.isprintable() or ch.isspace() or ch == "\u200d" for ch in shown)
    assert not any(ch in shown for ch in "\n\r\t\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
    assert fmt.visible(shown) == shown
    multi = fmt.visible(text, multiline=True)
    assert fmt.visible(multi, multiline=True) == multi
    assert "\r" not in multi


def test_echo_shows_control_characters(capsys: pytest.CaptureFixture[str]):
    fmt.echo("Created run \x1b]0;title\x07\nsecond line")
    assert capsys.readouterr().out == "Created run \\x1b]0;title\\x07\nsecond line\n"


def _printed(renderable: object, color: bool = False) -> str:
    from mltrail.cli.terminal import SafeConsole

    buffer = io.StringIO()
    out = SafeConsole(file=buffer, width=80, force_terminal=color, markup=False)
    out.print(renderable)
    return buffer.getvalue()


def test_console_prints_strings_and_texts_visibly():
    from rich.text import Text

    assert _printed("a\x1b[2Jb [link=file:///etc/passwd]x[/link]") == (
        "a\\x1b[2Jb [link=file:///etc/passwd]x[/link]\n"
    )
    styled = Text("ok ")
    # Built by hand, not through render.styled: rich drops the BEL itself; ESC is shown.
    styled.append("\x1b]0;t\x07", style="bold")
    assert _printed(styled) == "ok \\x1b]0;t\n"
    coloured = _printed(styled, color=True)
    assert "\\x1b]0;t" in coloured and "\x1b]" not in coloured


def test_console_makes_any_renderable_safe():
    """A renderable that bypasses the helpers (raw segments) still comes out visible."""
    from rich.segment import Segment

    class Raw:
        def __rich_console__(self, console, options):
            yield Segment("\x1b[2J\u202eraw")

    assert _printed(Raw()) == "\\x1b[2J\\u202eraw"


def test_table_cells_are_measured_as_shown():
    from mltrail.cli import render

    table = render.table([render.Column("name"), render.Column("value")])
    table.add_row("r\x1b[2J", "v\nw")
    lines = _printed(table).splitlines()
    assert lines[0].split() == ["name", "value"]
    # Measured as shown: the columns line up under their headers, one line per row.
    assert lines[2].rstrip() == "r\\x1b[2J  v\\nw"
    assert lines[0].index("value") == lines[2].index("v\\nw")
    assert len(lines) == 3


def test_python_warnings_are_shown_visibly(monkeypatch: pytest.MonkeyPatch):
    import warnings

    from mltrail import cli

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)
    cli._show_warnings_visibly()
    text = warnings.formatwarning("data/x\x1b[2J changed", UserWarning, "f.py", 1, "")
    assert "data/x\\x1b[2J changed" in text and "\x1b" not in text
