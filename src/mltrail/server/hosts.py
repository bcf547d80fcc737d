"""Which ``Host`` names a server without auth answers to: loopback ones, and those configured.

With auth off anyone who reaches the port may read and change everything, which is harmless
only while that is the local user. A web page elsewhere can still reach a loopback port through
DNS rebinding (its own name, re-pointed at 127.0.0.1): the browser then sends that name as
``Host``. So a server without auth answers only requests naming it ``localhost``,
``127.0.0.1`` or ``[::1]`` (any port), or a name given with ``--allowed-host`` /
:data:`ENV_ALLOWED_HOSTS`; other requests get 421 and a message saying so.
"""

from __future__ import annotations

import json
import os

#: Extra names (comma or space separated) a server without auth answers to.
ENV_ALLOWED_HOSTS = "MLTRAIL_ALLOWED_HOSTS"

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def allowed_from_env() -> tuple[str, ...]:
    """The names in :data:`ENV_ALLOWED_HOSTS`, lowercased."""
    raw = os.environ.get(ENV_ALLOWED_HOSTS, "")
    return tuple(n.strip().lower() for n in raw.replace(",", " ").split() if n.strip())


def name_of(host: str) -> str:
    """The name of a ``Host`` value, without its port (``[::1]:5000`` → ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def is_allowed(host: str | None, extra: tuple[str, ...] | frozenset[str] = ()) -> bool:
    """Whether a server without auth answers a request with this ``Host`` header."""
    if not host:
        # HTTP/1.0 without Host: no browser sends that, so no rebinding page is behind it.
        return True
    name = name_of(host)
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    wanted = {name_of(e) for e in extra} | {e.strip().lower() for e in extra}
    return name in wanted or host.strip().lower() in wanted


def refusal(host: str, extra: tuple[str, ...] | frozenset[str] = ()) -> bytes:
    """The 421 body for a request naming a host that is not allowed (the API's error shape)."""
    more = f", {', '.join(sorted(extra))}" if extra else ""
    return json.dumps(
        {
            "error_code": "HOST_NOT_ALLOWED",
            "message": f"this server runs without auth and answers only to localhost, "
            f"127.0.0.1 and [::1]{more}, not to Host {host[:200]!r}",
            "hint": "Open it by a loopback address (http://127.0.0.1:PORT). To reach it by "
            f"another name, start it with --allowed-host NAME (or {ENV_ALLOWED_HOSTS}); to "
            "serve a team, turn auth on and hand out tokens.",
        }
    ).encode()
