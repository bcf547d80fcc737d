"""Listening sockets for the servers mltrail starts (``mltrail server``, ``mltrail models serve``).

The socket is bound before uvicorn starts, so a port in use is a clear error, not a log line
from a worker, and every worker process inherits the same socket.
"""

from __future__ import annotations

import socket

from mltrail.errors import InvalidInput, InvalidState


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as e:
        raise InvalidInput(
            f"cannot listen on {host!r}: {e.strerror}",
            hint="Pass --host an address of this machine: 127.0.0.1, 0.0.0.0 or a hostname.",
        ) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise InvalidState(
            f"cannot listen on {host}:{port}: {e.strerror or e}",
            hint="Pick another --port, or stop the process that uses it."
            if e.errno in (98, 48)  # EADDRINUSE on Linux, macOS
            else None,
        ) from None
    sock.set_inheritable(True)
    return sock


def url_of(host: str, port: int) -> str:
    """The http URL of ``host:port`` (an IPv6 address in brackets)."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"
