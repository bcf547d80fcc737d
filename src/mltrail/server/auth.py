"""Who is calling: the Bearer token or the UI's cookie of a request, as a Principal.

What a caller may then do is decided in :mod:`mltrail.access`, the one module of access rules
the REST API, the MLflow API and the UI all call: handlers take :func:`principal` (a FastAPI
dependency) and ask ``mltrail.access`` (``allow``, ``allow_run``, ``allow_objects``,
``visible_*``, ``actor``).

With auth on, every request carries ``Authorization: Bearer mlt_<id>_<secret>``. A verified
token and its user's permissions are kept in this process for :data:`CACHE_SECONDS`, so a busy
client costs no database query per request; the price is that revoking a token, or changing a
permission, reaches every server process within that time, not at once (the process that made
the change forgets what it held at once).
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from typing import TYPE_CHECKING

from starlette.requests import Request  # FastAPI resolves dependency signatures at runtime

from mltrail.access import Principal
from mltrail.errors import PermissionDenied, Unauthenticated

if TYPE_CHECKING:
    from mltrail.server.app import ServerState

#: When auth is off, clients may say who they are with this header (their OS user).
USER_HEADER = "X-Mltrail-User"

#: How long a verified token (and its user's permissions) is trusted without asking the store.
CACHE_SECONDS = 30.0
#: Tokens remembered per process; past this the cache starts again (a flood of distinct valid
#: tokens is not a real workload).
CACHE_ENTRIES = 10_000

_NEED_TOKEN_HINT = (
    "Set MLTRAIL_TOKEN to your token (an admin creates one with "
    "`mltrail server tokens create --user NAME --role read|write|admin`)."
)


class _TokenCache:
    """Verified tokens of one server process: sha256(token) → (trusted until, Principal)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, key: str) -> Principal | None:
        with self._lock:
            found = self._entries.get(key)
        if found is None:
            return None
        until, who = found
        if time.monotonic() >= until:
            with self._lock:
                self._entries.pop(key, None)
            return None
        return who

    def put(self, key: str, who: Principal, seconds: float) -> None:
        with self._lock:
            if len(self._entries) >= CACHE_ENTRIES:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + seconds, who)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_caches: weakref.WeakKeyDictionary[ServerState, _TokenCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def _cache_of(state: ServerState) -> _TokenCache:
    with _caches_lock:
        found = _caches.get(state)
        if found is None:
            found = _caches[state] = _TokenCache()
        return found


def forget_tokens(state: ServerState) -> None:
    """Drop this process's verified tokens (after a revocation or a permission change)."""
    _cache_of(state).clear()


def principal(request: Request) -> Principal:
    """The caller of ``request`` (a FastAPI dependency)."""
    from mltrail.server.app import state_of

    state = state_of(request)
    if not state.settings.auth_enabled:
        claimed = request.headers.get(USER_HEADER, "").strip()
        who = Principal(claimed[:256] or "anonymous", "admin")
    else:
        who = authenticate(state, request.headers.get("Authorization") or _ui_cookie(request))
    # For the access log (server/middleware.py) and the UI's pages.
    request.state.user = who.user
    request.state.principal = who
    return who


#: The cookie in which the web UI keeps a signed-in user's token (see mltrail/ui/app.py).
UI_COOKIE = "mltrail_token"


def _ui_cookie(request: Request) -> str | None:
    """The UI's sign-in cookie as an Authorization value, when it may stand for one.

    Reads may use it; a write only when the browser says it comes from this very server (the
    cookie is SameSite=Strict too), so another site cannot make a signed-in browser change things.
    """
    token = request.cookies.get(UI_COOKIE)
    if not token:
        return None
    if request.method not in ("GET", "HEAD") and not same_origin(request):
        return None
    return f"Bearer {token}"


def same_origin(request: Request) -> bool:
    """Whether the browser says ``request`` comes from a page of this very server.

    ``Origin`` (else ``Referer``) must name the request's ``Host`` or ``X-Forwarded-Host``; a
    browser's ``Sec-Fetch-Site: same-origin`` is enough on its own (a page cannot forge it). A
    request with none of the three passes: browsers send ``Origin`` on every cross-site POST,
    so it comes from curl or a script, which cannot ride on someone else's session.
    """
    site = request.headers.get("sec-fetch-site")
    if site == "same-origin":
        return True
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return site is None
    host = source.split("://", 1)[-1].split("/", 1)[0].lower()
    return bool(host) and host in _hosts_of(request)


def _hosts_of(request: Request) -> set[str]:
    """The names this request reached the server by: ``Host``, and any proxy's original host."""
    hosts = {request.headers.get("host", "").strip().lower()}
    # A proxy that rewrites Host keeps the browser's in X-Forwarded-Host (one per proxy hop);
    # a browser cannot set that header on a cross-site form, so trusting it opens nothing.
    forwarded = request.headers.get("x-forwarded-host", "")
    hosts.update(h.strip().lower() for h in forwarded.split(","))
    hosts.discard("")
    return hosts


def require_same_origin(request: Request) -> None:
    """Refuse a UI form sent from another site (a FastAPI dependency; reads always pass).

    Needed in every auth mode: with auth off anyone who reaches the server is an admin, so a
    page elsewhere could otherwise post a form to it from the user's browser.
    """
    if request.method in ("GET", "HEAD", "OPTIONS") or same_origin(request):
        return
    raise PermissionDenied(
        "this form must be sent from the mltrail UI itself",
        hint="Open the page on this server and send the form from there; behind a proxy that "
        "rewrites Host, have it pass the original in X-Forwarded-Host.",
    )


def authenticate(state: ServerState, authorization: str | None) -> Principal:
    """The Principal of an ``Authorization`` header value; Unauthenticated if there is none."""
    if not authorization or not authorization.strip():
        raise Unauthenticated("this server needs a token", hint=_NEED_TOKEN_HINT)
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() == "basic" and token:
        token = _basic_password(token)
    elif scheme.lower() != "bearer" or not token:
        raise Unauthenticated(
            "the Authorization header must be 'Bearer <token>' (or Basic with the token as "
            "the password)",
            hint=_NEED_TOKEN_HINT,
        )
    # A hash as the key, so the cache holds no usable secret.
    key = hashlib.sha256(token.encode()).hexdigest()
    cache = _cache_of(state)
    who = cache.get(key)
    if who is not None:
        return who
    info = state.store.verify_token(token)
    who = Principal(
        info.user,
        info.role,
        authenticated=True,
        grants=state.store.permissions_of(info.user),
        token=info,
    )
    seconds = CACHE_SECONDS
    if info.expires_at is not None:
        # Never trust a token past its expiry: then it is verified again and refused.
        seconds = min(seconds, max(0.0, info.expires_at / 1000 - time.time()))
    cache.put(key, who, seconds)
    return who


def _basic_password(credentials: str) -> str:
    """The password of HTTP Basic credentials: the token (the mlflow client's
    MLFLOW_TRACKING_USERNAME/PASSWORD); the user name is the token's, whatever was sent."""
    import base64
    import binascii

    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated(
            "the Basic credentials are not base64 of 'user:password'", hint=_NEED_TOKEN_HINT
        ) from None
    _, colon, password = decoded.partition(":")
    if not colon or not password.strip():
        raise Unauthenticated(
            "Basic credentials need an mltrail token as the password", hint=_NEED_TOKEN_HINT
        )
    return password.strip()
