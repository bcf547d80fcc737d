"""Who is calling, and may they: tokens, roles, per-experiment and per-model permissions.

Handlers ask through three calls: :func:`principal` (a FastAPI dependency), :func:`allow` with
the level an operation needs (``read``, ``write`` or ``admin``) and the experiment or model it
touches, and :func:`actor` for the name written into run owners and audit events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import Request  # FastAPI resolves dependency signatures at runtime

from mltrail.errors import PermissionDenied

if TYPE_CHECKING:
    from mltrail.server.app import ServerState

#: Role levels, weakest first.
LEVELS = {"none": 0, "read": 1, "write": 2, "admin": 3}

#: When auth is off, clients may say who they are with this header (their OS user).
USER_HEADER = "X-Mltrail-User"


@dataclass(frozen=True)
class Principal:
    """The caller: a user, their role, and any per-experiment or per-model grants."""

    user: str
    role: str
    authenticated: bool = False
    #: (``"experiment"``, id) or (``"model"``, name) → level, overriding the role there.
    grants: Mapping[tuple[str, str], str] = field(default_factory=dict)


def principal(request: Request) -> Principal:
    """The caller of ``request`` (a FastAPI dependency)."""
    from mltrail.server.app import state_of

    state = state_of(request)
    if not state.settings.auth_enabled:
        claimed = request.headers.get(USER_HEADER, "").strip()
        return Principal(claimed[:256] or "anonymous", "admin")
    raise NotImplementedError("token authentication")


def allow(
    who: Principal,
    level: str,
    *,
    experiment_id: str | None = None,
    model: str | None = None,
) -> None:
    """Raise PermissionDenied unless ``who`` holds ``level`` (on the experiment or model)."""
    have = LEVELS[who.role]
    if experiment_id is not None and ("experiment", experiment_id) in who.grants:
        have = LEVELS[who.grants[("experiment", experiment_id)]]
    elif model is not None and ("model", model) in who.grants:
        have = LEVELS[who.grants[("model", model)]]
    if have >= LEVELS[level]:
        return
    where = (
        f" on experiment {experiment_id}"
        if experiment_id is not None
        else f" on model {model!r}"
        if model is not None
        else ""
    )
    raise PermissionDenied(
        f"user {who.user!r} (role {who.role}) may not {_VERB[level]}{where}",
        hint="Ask an admin for a token with a higher role, or for a permission on it "
        "(`mltrail server permissions set`).",
    )


def allow_run(who: Principal, state: ServerState, run_id: str, level: str) -> None:
    """:func:`allow` on the experiment a run belongs to (looked up only when it matters)."""
    if who.grants and any(kind == "experiment" for kind, _ in who.grants):
        experiment_id = state.store.get_run_info(run_id).experiment_id
        allow(who, level, experiment_id=experiment_id)
    else:
        allow(who, level)


def actor(who: Principal, claimed: str | None) -> str:
    """The name recorded as the author of a change: the token's user when auth is on."""
    if who.authenticated or not claimed:
        return who.user
    return claimed


_VERB = {"read": "read", "write": "write", "admin": "administer the server"}
