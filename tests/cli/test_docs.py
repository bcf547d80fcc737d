"""Docs that cannot rot: every command has help text and a section in docs/cli.md."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from mltrail.cli import cli

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path.rsplit(" ", 1)[-1])
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, f"{path} {name} is listed but cannot be loaded"
            yield from _walk(sub, f"{path} {name}")


COMMANDS = dict(_walk(cli, "mltrail"))
LEAVES = {path: cmd for path, cmd in COMMANDS.items() if not isinstance(cmd, click.Group)}


def test_the_tree_is_what_we_expect():
    assert set(LEAVES) == {
        "mltrail init",
        "mltrail doctor",
        "mltrail ui",
        "mltrail sync",
        "mltrail lineage",
        *(f"mltrail exp {c}" for c in ("ls", "create", "delete", "restore", "rename")),
        *(
            f"mltrail runs {c}"
            for c in ("ls", "show", "diff", "history", "artifacts", "download", "delete", "restore")
        ),
        *(
            f"mltrail data {c}"
            for c in (
                *("add", "status", "checkout", "unprotect", "diff", "log", "gc"),
                *("push", "fetch", "pull"),
            )
        ),
        *(f"mltrail remote {c}" for c in ("add", "list", "default", "remove")),
        *(
            f"mltrail models {c}"
            for c in (
                *("ls", "show", "versions", "register", "alias", "unalias", "stage", "history"),
                *("check", "describe", "tag", "rename", "delete", "download"),
            )
        ),
        *("mltrail models serve", "mltrail models predict"),
        *("mltrail repro", "mltrail dag"),
        *("mltrail reproduce", "mltrail params diff", "mltrail metrics diff"),
        "mltrail import mlflow",
        "mltrail import dvc",
        "mltrail server migrate",
        *(f"mltrail server tokens {c}" for c in ("create", "ls", "revoke")),
        *(f"mltrail server permissions {c}" for c in ("set", "rm", "ls")),
    }


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_command_and_its_options_have_help(path: str):
    command = COMMANDS[path]
    assert (command.help or "").strip(), f"{path} has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert (param.help or "").strip(), f"{path} {param.opts} has no help text"


@pytest.mark.parametrize("path", sorted(LEAVES))
def test_command_has_a_section_with_usage_and_example(path: str):
    text = DOCS.read_text()
    heading = re.search(rf"^#+ `{re.escape(path)}`\n", text, re.MULTILINE)
    assert heading, f"docs/cli.md has no '### `{path}`' section"
    section = text[heading.end() :].split("\n#", 1)[0]
    ctx = click.Context(LEAVES[path], info_name=path)
    usage = LEAVES[path].get_usage(ctx)
    assert usage in section, f"docs/cli.md section of {path} lacks its usage line: {usage}"
    assert f"$ {path}" in section, f"docs/cli.md section of {path} has no example"
