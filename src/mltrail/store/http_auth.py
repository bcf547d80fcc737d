"""Tokens and permissions over HTTP: a mixin of :class:`~mltrail.store.http.HttpStore`.

Each method calls the server's admin API (``/api/v1/admin/…``), so ``mltrail server tokens`` and
``permissions`` work against a running server with an admin's ``MLTRAIL_TOKEN`` as they do on the
database directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mltrail.entities import Permission, TokenInfo
from mltrail.store.auth_base import AuthStore, check_token_id, parse_token

if TYPE_CHECKING:
    from mltrail.transport import HttpTransport


class HttpAuthMixin(AuthStore):
    """Tokens and permissions of a ``mltrail server``, through its admin API."""

    if TYPE_CHECKING:
        uri: str
        transport: HttpTransport

    # -- tokens ------------------------------------------------------------------------------
    def create_token(
        self,
        user: str,
        role: str,
        description: str | None = None,
        expires_at: int | None = None,
    ) -> tuple[TokenInfo, str]:
        """Create a token; return it and its string, which is shown once and never stored."""
        body = {"user": user, "role": role, "description": description, "expires_at": expires_at}
        found = self.transport.call("POST", "/admin/tokens", json_body=body)
        return TokenInfo.from_dict(found["info"]), found["token"]

    def list_tokens(
        self, user: str | None = None, include_revoked: bool = False
    ) -> list[TokenInfo]:
        """Tokens, newest first (expired ones included; revoked ones only if asked)."""
        params = {"user": user, "include_revoked": "true" if include_revoked else None}
        found = self.transport.call("GET", "/admin/tokens", params=params)
        return [TokenInfo.from_dict(d) for d in found["tokens"]]

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token (revoking it again changes nothing); return it."""
        found = self.transport.call("DELETE", f"/admin/tokens/{check_token_id(token_id)}")
        return TokenInfo.from_dict(found)

    def verify_token(self, token: str) -> TokenInfo:
        """The token a token string names; Unauthenticated if unknown, wrong, revoked or expired.

        The server checks it for an admin (the caller's own token is what authorizes the call).
        """
        parse_token(token)
        found = self.transport.call("POST", "/admin/tokens/verify", json_body={"token": token})
        return TokenInfo.from_dict(found)

    # -- permissions -------------------------------------------------------------------------
    def set_permission(self, user: str, kind: str, target: str, level: str) -> Permission:
        """Give ``user`` a level on one experiment (``kind`` "experiment") or model."""
        body = {"user": user, "kind": kind, "target": target, "level": level}
        return Permission.from_dict(
            self.transport.call("PUT", "/admin/permissions", json_body=body)
        )

    def delete_permission(self, user: str, kind: str, target: str) -> None:
        """Remove a permission, so the user's role applies there again."""
        params = {"user": user, "kind": kind, "target": target}
        self.transport.call("DELETE", "/admin/permissions", params=params)

    def list_permissions(self, user: str | None = None) -> list[Permission]:
        """Permissions, by user, kind and target."""
        found = self.transport.call("GET", "/admin/permissions", params={"user": user})
        return [Permission.from_dict(d) for d in found["permissions"]]
