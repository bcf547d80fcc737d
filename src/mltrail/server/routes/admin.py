"""Tokens and permissions: ``/api/v1/admin/…`` (admins only), and ``/api/v1/whoami``.

A server without auth takes every caller for an admin, so it serves none of the token and
permission routes: a token made there would work against an auth-on server on the same store.
Tokens are then made on the store itself (``mltrail server tokens create --store …``).

A token's secret is in the reply that creates it and nowhere else: the store keeps its hash.
Revoking a token or changing a permission takes effect at once in the process that handled the
request, and within :data:`~mltrail.server.auth.CACHE_SECONDS` in the others.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from mltrail.access import Principal, allow
from mltrail.errors import PermissionDenied
from mltrail.server.app import ServerState, reply, state_of
from mltrail.server.auth import forget_tokens, principal
from mltrail.server.routes.ops import ERROR_RESPONSES
from mltrail.server.schemas import Body

router = APIRouter(prefix="/api/v1", tags=["admin"], responses=ERROR_RESPONSES)

Who = Annotated[Principal, Depends(principal)]
State = Annotated[ServerState, Depends(state_of)]
User = Annotated[str, Query(min_length=1, max_length=256)]
Role = Literal["read", "write", "admin"]
Kind = Literal["experiment", "model"]
Level = Literal["none", "read", "write"]

# Request fields the store checks itself are plain strings here, with their rules only in the
# OpenAPI document: the store's errors name the value and say what to do, and an HTTP store
# then fails exactly as a SQL one does.
_USER = {"minLength": 1, "maxLength": 256}
_ROLES = {"enum": ["read", "write", "admin"]}
_KINDS = {"enum": ["experiment", "model"]}
_LEVELS = {"enum": ["none", "read", "write"]}


# -- bodies --------------------------------------------------------------------------------------


class TokenOut(BaseModel):
    token_id: str
    user: str
    role: Role
    description: str | None
    created_at: int
    expires_at: int | None
    revoked_at: int | None


class CreatedTokenOut(BaseModel):
    info: TokenOut
    #: The token string, ``mlt_<token_id>_<secret>``: shown once, never stored.
    token: str


class TokensOut(BaseModel):
    tokens: list[TokenOut]


class CreateToken(Body):
    user: str = Field(json_schema_extra=_USER)
    role: str = Field(json_schema_extra=_ROLES)
    description: str | None = Field(default=None, json_schema_extra={"maxLength": 1000})
    #: Milliseconds since the epoch; none: the token does not expire.
    expires_at: int | None = Field(default=None, ge=0, le=2**63 - 1)


class VerifyToken(Body):
    token: str = Field(min_length=1, max_length=200)


class PermissionOut(BaseModel):
    user: str
    kind: Kind
    target: str
    level: Level


class PermissionsOut(BaseModel):
    permissions: list[PermissionOut]


class SetPermission(Body):
    user: str = Field(json_schema_extra=_USER)
    kind: str = Field(json_schema_extra=_KINDS)
    #: An experiment id, or a registered model's name.
    target: str = Field(json_schema_extra={"minLength": 1, "maxLength": 500})
    level: str = Field(json_schema_extra=_LEVELS)


class GrantOut(BaseModel):
    kind: Kind
    target: str
    level: Level


class WhoamiOut(BaseModel):
    user: str
    role: Role
    #: False when the server runs without auth (the user is then what the client claims).
    authenticated: bool
    token: TokenOut | None
    grants: list[GrantOut]


def _allow_admin(who: Principal, state: ServerState) -> None:
    """Admins only, and never anonymous callers of a server without auth."""
    if not state.settings.auth_enabled:
        raise PermissionDenied(
            "this server runs without auth, so its token and permission API is off (anyone "
            "who reaches it would be an admin)",
            hint="Manage tokens and permissions on the store itself: `mltrail server tokens "
            "create --user NAME --role admin --store STORE` (and `mltrail server permissions "
            "set`), or start the server with --auth and call this API with an admin token.",
        )
    allow(who, "admin")


# -- tokens --------------------------------------------------------------------------------------


@router.post("/admin/tokens", response_model=CreatedTokenOut, status_code=201)
def create_token(body: CreateToken, who: Who, state: State) -> Response:
    """Create a token for a user; the reply holds its secret, which is never shown again."""
    _allow_admin(who, state)
    info, token = state.store.create_token(body.user, body.role, body.description, body.expires_at)
    return reply({"info": info.to_dict(), "token": token}, 201)


@router.get("/admin/tokens", response_model=TokensOut)
def list_tokens(
    who: Who, state: State, user: User | None = None, include_revoked: bool = False
) -> Response:
    """Tokens, newest first, without their secrets (revoked ones only if asked)."""
    _allow_admin(who, state)
    found = state.store.list_tokens(user, include_revoked)
    return reply({"tokens": [t.to_dict() for t in found]})


@router.delete("/admin/tokens/{token_id}", response_model=TokenOut)
def revoke_token(
    token_id: Annotated[str, Path(min_length=1, max_length=64)], who: Who, state: State
) -> Response:
    """Revoke a token (again: no change)."""
    _allow_admin(who, state)
    info = state.store.revoke_token(token_id)
    forget_tokens(state)
    return reply(info.to_dict())


@router.post("/admin/tokens/verify", response_model=TokenOut)
def verify_token(body: VerifyToken, who: Who, state: State) -> Response:
    """Check a token string: its info, or 401 saying why it is not accepted."""
    _allow_admin(who, state)
    return reply(state.store.verify_token(body.token).to_dict())


# -- permissions ---------------------------------------------------------------------------------


@router.put("/admin/permissions", response_model=PermissionOut)
def set_permission(body: SetPermission, who: Who, state: State) -> Response:
    """Give a user a level on one experiment (by id) or registered model (by name)."""
    _allow_admin(who, state)
    found = state.store.set_permission(body.user, body.kind, body.target, body.level)
    forget_tokens(state)
    return reply(found.to_dict())


@router.delete("/admin/permissions", status_code=204)
def delete_permission(
    who: Who,
    state: State,
    user: Annotated[str, Query(json_schema_extra=_USER)],
    kind: Annotated[str, Query(json_schema_extra=_KINDS)],
    target: Annotated[str, Query(json_schema_extra={"minLength": 1, "maxLength": 500})],
) -> Response:
    """Remove a permission, so the user's role applies there again."""
    _allow_admin(who, state)
    state.store.delete_permission(user, kind, target)
    forget_tokens(state)
    return Response(status_code=204)


@router.get("/admin/permissions", response_model=PermissionsOut)
def list_permissions(who: Who, state: State, user: User | None = None) -> Response:
    """Permissions, by user, kind and target."""
    _allow_admin(who, state)
    return reply({"permissions": [p.to_dict() for p in state.store.list_permissions(user)]})


# -- the caller ----------------------------------------------------------------------------------


@router.get("/whoami", response_model=WhoamiOut)
def whoami(who: Who) -> Response:
    """Who the server takes the caller to be: user, role, token and per-resource grants."""
    return reply(
        {
            "user": who.user,
            "role": who.role,
            "authenticated": who.authenticated,
            "token": who.token.to_dict() if who.token else None,
            "grants": [
                {"kind": kind, "target": target, "level": level}
                for (kind, target), level in sorted(who.grants.items())
            ],
        }
    )


__all__ = ["router"]
