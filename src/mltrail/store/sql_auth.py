"""Tokens and permissions in SQL: a mixin of :class:`~mltrail.store.sql.SqlStore`.

Tokens live in ``auth_tokens`` (only the SHA-256 of each secret), permissions in ``permissions``;
both tables come with migration 0004.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mltrail.entities import Permission, TokenInfo
from mltrail.errors import InvalidValue, NotFound, Unauthenticated
from mltrail.store import schema as t
from mltrail.store.auth_base import (
    AuthStore,
    check_description,
    check_kind,
    check_level,
    check_role,
    check_token_id,
    check_user,
    format_ms,
    hash_secret,
    new_token,
    parse_token,
    secret_matches,
)
from mltrail.store.sql_registry_models import now_ms

if TYPE_CHECKING:
    from collections.abc import Callable

T, P = t.auth_tokens.c, t.permissions.c

# Compared against when a token id is unknown, so both answers take the same time.
_DUMMY_HASH = hash_secret("no such token")

_ASK_ADMIN = "Ask an admin for a new token (`mltrail server tokens create`)."


def _token(row: Any) -> TokenInfo:
    return TokenInfo(
        token_id=row.token_id,
        user=row.user_name,
        role=row.role,
        description=row.description,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class SqlAuthMixin(AuthStore):
    """Tokens and permissions in the SQL store."""

    if TYPE_CHECKING:
        _upsert: Any
        _read: Callable[[], sa.Connection]
        _write: Callable[[], sa.Connection]

        def get_experiment(self, experiment_id: str) -> Any: ...

    # -- tokens ------------------------------------------------------------------------------
    def create_token(
        self,
        user: str,
        role: str,
        description: str | None = None,
        expires_at: int | None = None,
    ) -> tuple[TokenInfo, str]:
        """Create a token; return it and its string, which is shown once and never stored."""
        user = check_user(user)
        role = check_role(role)
        description = check_description(description)
        now = now_ms()
        if expires_at is not None and (not isinstance(expires_at, int) or expires_at <= now):
            raise InvalidValue(
                f"expiry {expires_at!r} is not in the future",
                hint="Pass --expires with a duration such as 30d, or no expiry.",
            )
        token_id, secret, token = new_token()
        info = TokenInfo(token_id, user, role, description, now, expires_at)
        with self._write() as conn, conn.begin():
            conn.execute(
                t.auth_tokens.insert().values(
                    token_id=token_id,
                    secret_hash=hash_secret(secret),
                    user_name=user,
                    role=role,
                    description=description,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        return info, token

    def list_tokens(
        self, user: str | None = None, include_revoked: bool = False
    ) -> list[TokenInfo]:
        """Tokens, newest first (expired ones included; revoked ones only if asked)."""
        query = sa.select(t.auth_tokens).order_by(T.created_at.desc(), T.token_id)
        if user is not None:
            query = query.where(T.user_name == user)
        if not include_revoked:
            query = query.where(T.revoked_at.is_(None))
        with self._read() as conn:
            return [_token(row) for row in conn.execute(query)]

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token (revoking it again changes nothing); return it."""
        token_id = check_token_id(token_id)
        with self._write() as conn, conn.begin():
            row = conn.execute(sa.select(t.auth_tokens).where(T.token_id == token_id)).first()
            if row is None:
                raise NotFound(
                    f"token {token_id} does not exist",
                    hint="`mltrail server tokens ls` lists the tokens.",
                )
            if row.revoked_at is not None:
                return _token(row)
            now = now_ms()
            conn.execute(
                t.auth_tokens.update().where(T.token_id == token_id).values(revoked_at=now)
            )
        return replace(_token(row), revoked_at=now)

    def verify_token(self, token: str) -> TokenInfo:
        """The token a token string names; Unauthenticated if unknown, wrong, revoked or expired."""
        token_id, secret = parse_token(token)
        with self._read() as conn:
            row = conn.execute(sa.select(t.auth_tokens).where(T.token_id == token_id)).first()
        # An unknown id and a wrong secret get the same answer in the same time.
        if not secret_matches(secret, row.secret_hash if row else _DUMMY_HASH) or row is None:
            raise Unauthenticated(
                "the token is not valid on this server",
                hint="Check MLTRAIL_TOKEN (a token works only on the server that created it); "
                + _ASK_ADMIN,
            )
        if row.revoked_at is not None:
            raise Unauthenticated(
                f"token {token_id} was revoked on {format_ms(row.revoked_at)}", hint=_ASK_ADMIN
            )
        if row.expires_at is not None and row.expires_at <= now_ms():
            raise Unauthenticated(
                f"token {token_id} expired on {format_ms(row.expires_at)}", hint=_ASK_ADMIN
            )
        return _token(row)

    # -- permissions -------------------------------------------------------------------------
    def set_permission(self, user: str, kind: str, target: str, level: str) -> Permission:
        """Give ``user`` a level on one experiment (``kind`` "experiment") or model."""
        user = check_user(user)
        kind = check_kind(kind)
        level = check_level(level)
        target = self._check_target(kind, target)
        stmt = self._upsert(t.permissions).values(
            user_name=user, kind=kind, target=target, level=level
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_name", "kind", "target"], set_={"level": stmt.excluded.level}
        )
        with self._write() as conn, conn.begin():
            conn.execute(stmt)
        return Permission(user, kind, target, level)

    def delete_permission(self, user: str, kind: str, target: str) -> None:
        """Remove a permission, so the user's role applies there again."""
        user = check_user(user)
        kind = check_kind(kind)
        with self._write() as conn, conn.begin():
            gone = conn.execute(
                t.permissions.delete().where(
                    P.user_name == user, P.kind == kind, P.target == str(target)
                )
            ).rowcount
        if not gone:
            raise NotFound(
                f"user {user!r} has no permission on {kind} {target!r}",
                hint="`mltrail server permissions ls` lists the permissions.",
            )

    def list_permissions(self, user: str | None = None) -> list[Permission]:
        """Permissions, by user, kind and target."""
        query = sa.select(t.permissions).order_by(P.user_name, P.kind, P.target)
        if user is not None:
            query = query.where(P.user_name == user)
        with self._read() as conn:
            return [Permission(r.user_name, r.kind, r.target, r.level) for r in conn.execute(query)]

    def _check_target(self, kind: str, target: object) -> str:
        if not isinstance(target, str) or not target or len(target) > 500:
            raise InvalidValue(
                f"{kind} {str(target)[:80]!r} is not an experiment id or model name",
                hint="Name one experiment (--experiment) or one registered model (--model).",
            )
        if kind == "experiment":
            # Experiment ids are what handlers check; a grant on a missing one would never apply.
            self.get_experiment(target)
        return target
