"""Which store a command works on, and the client for it, opened once and only when needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from mltrail.tracking.client import MltrailClient


@dataclass
class CliState:
    """The root options (``--store``, ``--objects``) and the client built from them."""

    store: str | None = None
    objects: str | None = None
    _client: MltrailClient | None = field(default=None, repr=False)

    def client(self) -> MltrailClient:
        """Open the store, refusing to create one: only ``mltrail init`` creates stores."""
        if self._client is None:
            from mltrail.tracking.client import MltrailClient

            self._client = MltrailClient(self.store, self.objects, create=False)
        return self._client

    def close(self) -> None:
        """Drain and close the client if one was opened."""
        if self._client is not None:
            client, self._client = self._client, None
            client.close()


def state(ctx: click.Context | None = None) -> CliState:
    """The invocation's CliState (a default one when a subcommand is invoked on its own)."""
    ctx = ctx or click.get_current_context()
    found = ctx.find_object(CliState)
    if found is None:
        found = ctx.find_root().ensure_object(CliState)
    return found


def get_client(ctx: click.Context | None = None) -> MltrailClient:
    """The client for this invocation; it is closed when the command finishes."""
    ctx = ctx or click.get_current_context()
    st = state(ctx)
    if st._client is None:
        client = st.client()
        ctx.find_root().call_on_close(st.close)
        return client
    return st._client
