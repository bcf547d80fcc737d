"""The team server's users: API tokens with roles, and per-experiment and per-model permissions.

:class:`~mltrail.store.base.TrackingStore` inherits :class:`AuthStore`, so the SQL stores keep
tokens in the same database as the runs they guard, and the HTTP store manages them through the
server's admin API.

A token is ``mlt_<token_id>_<secret>``: the id (12 hex characters) names it in listings and
revocations; the store keeps only the SHA-256 of the secret, so a leaked database grants nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from abc import ABC, abstractmethod
from datetime import UTC, datetime

from mltrail.entities import Permission, TokenInfo
from mltrail.errors import InvalidValue, Unauthenticated

#: Roles a token carries, weakest first.
ROLES = ("read", "write", "admin")
#: Levels a permission gives on one experiment or model; ``none`` hides it.
PERMISSION_LEVELS = ("none", "read", "write")
#: What a permission is on.
PERMISSION_KINDS = ("experiment", "model")

TOKEN_PREFIX = "mlt_"
TOKEN_ID_LENGTH = 12
MAX_USER_LENGTH = 256
MAX_DESCRIPTION_LENGTH = 1000

_TOKEN_HINT = "Set MLTRAIL_TOKEN to a token an admin created with `mltrail server tokens create`."


def new_token() -> tuple[str, str, str]:
    """A fresh ``(token_id, secret, token_string)``."""
    token_id = secrets.token_hex(TOKEN_ID_LENGTH // 2)
    secret = secrets.token_urlsafe(32)
    return token_id, secret, f"{TOKEN_PREFIX}{token_id}_{secret}"


def hash_secret(secret: str) -> str:
    """The stored form of a token's secret (hex SHA-256)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Whether ``secret`` hashes to ``stored_hash``, in constant time."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def parse_token(token: str) -> tuple[str, str]:
    """Split a token string into ``(token_id, secret)`` or raise Unauthenticated."""
    token = token.strip()
    token_id, _, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if (
        not token.startswith(TOKEN_PREFIX)
        or len(token_id) != TOKEN_ID_LENGTH
        or not all(c in "0123456789abcdef" for c in token_id)
        or not secret
    ):
        raise Unauthenticated(
            "the token is not an mltrail token (they look like mlt_<id>_<secret>)",
            hint=_TOKEN_HINT,
        )
    return token_id, secret


def check_token_id(token_id: object) -> str:
    """Return a token id (12 lowercase hex characters) or raise InvalidValue."""
    if (
        not isinstance(token_id, str)
        or len(token_id) != TOKEN_ID_LENGTH
        or not all(c in "0123456789abcdef" for c in token_id)
    ):
        raise InvalidValue(
            f"token id {str(token_id)[:80]!r} is not a token id (12 lowercase hex characters)",
            hint="`mltrail server tokens ls` lists the ids.",
        )
    return token_id


def check_user(user: object) -> str:
    """Return a user name (1 to 256 characters, no surrounding space) or raise InvalidValue."""
    if (
        not isinstance(user, str)
        or not user.strip()
        or user != user.strip()
        or len(user) > MAX_USER_LENGTH
        or any(ord(c) < 32 for c in user)
    ):
        raise InvalidValue(
            f"user name {str(user)[:80]!r} must be 1 to {MAX_USER_LENGTH} printable characters "
            "with no leading or trailing space",
            hint="Pass --user with a name such as alice.",
        )
    return user


def check_role(role: object) -> str:
    """Return a token role or raise InvalidValue."""
    if role not in ROLES:
        raise InvalidValue(
            f"role {role!r} is not one of {', '.join(ROLES)}",
            hint="read: see everything; write: also log runs and change models; "
            "admin: also manage tokens and permissions.",
        )
    return str(role)


def check_level(level: object) -> str:
    """Return a permission level or raise InvalidValue."""
    if level not in PERMISSION_LEVELS:
        raise InvalidValue(
            f"permission level {level!r} is not one of {', '.join(PERMISSION_LEVELS)}",
            hint="none hides the experiment or model; read and write give exactly that.",
        )
    return str(level)


def check_kind(kind: object) -> str:
    """Return a permission kind or raise InvalidValue."""
    if kind not in PERMISSION_KINDS:
        raise InvalidValue(
            f"permission kind {kind!r} is not one of {', '.join(PERMISSION_KINDS)}",
            hint="Permissions are on one experiment (by id) or one registered model (by name).",
        )
    return str(kind)


def check_description(description: object) -> str | None:
    """Return an optional token description or raise InvalidValue."""
    if description is None:
        return None
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidValue(
            f"token description must be text of at most {MAX_DESCRIPTION_LENGTH} characters",
            hint="Pass a shorter --description.",
        )
    return description


def format_ms(ms: int) -> str:
    """A timestamp in milliseconds as ``2025-01-31 14:00 UTC``."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


class AuthStore(ABC):
    """API tokens with roles, and per-experiment and per-model permissions of users."""

    # -- tokens ------------------------------------------------------------------------------
    @abstractmethod
    def create_token(
        self,
        user: str,
        role: str,
        description: str | None = None,
        expires_at: int | None = None,
    ) -> tuple[TokenInfo, str]:
        """Create a token; return it and its string, which is shown once and never stored."""

    @abstractmethod
    def list_tokens(
        self, user: str | None = None, include_revoked: bool = False
    ) -> list[TokenInfo]:
        """Tokens, newest first (expired ones included; revoked ones only if asked)."""

    @abstractmethod
    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token (revoking it again changes nothing); return it."""

    @abstractmethod
    def verify_token(self, token: str) -> TokenInfo:
        """The token a token string names; Unauthenticated if unknown, wrong, revoked or expired."""

    # -- permissions -------------------------------------------------------------------------
    @abstractmethod
    def set_permission(self, user: str, kind: str, target: str, level: str) -> Permission:
        """Give ``user`` a level on one experiment (``kind`` "experiment") or model."""

    @abstractmethod
    def delete_permission(self, user: str, kind: str, target: str) -> None:
        """Remove a permission, so the user's role applies there again."""

    @abstractmethod
    def list_permissions(self, user: str | None = None) -> list[Permission]:
        """Permissions, by user, kind and target."""

    def permissions_of(self, user: str) -> dict[tuple[str, str], str]:
        """A user's permissions as ``{(kind, target): level}``."""
        return {(p.kind, p.target): p.level for p in self.list_permissions(user)}
