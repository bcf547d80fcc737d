"""A click group whose subcommands live in modules imported only when they are used."""

from __future__ import annotations

import importlib
from typing import Any

import click


class LazyGroup(click.Group):
    """A group built from a mapping of command name to ``"module:attribute"``.

    ``mltrail --help`` must not pay for SQLAlchemy or rich, so the modules behind the commands
    are imported on first use; they in turn import heavy libraries only inside their callbacks.
    """

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.lazy_commands: dict[str, str] = dict(lazy_commands or {})
        # Help lists commands in the order they are declared (workflow order), not sorted.
        self._order = list(self.lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return the lazy commands in declared order, then any added eagerly."""
        eager = [name for name in super().list_commands(ctx) if name not in self._order]
        return [*self._order, *eager]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return a command, importing its module the first time it is asked for."""
        if cmd_name in self.lazy_commands:
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command:
        module_name, attr = self.lazy_commands[cmd_name].split(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}:{attr} is not a click command")
        # Cache it so later lookups skip the import machinery.
        self.commands[cmd_name] = command
        del self.lazy_commands[cmd_name]
        return command
