"""Sockets and uvicorn for the servers mltrail starts (``mltrail server``, ``models serve``).

The socket is bound before uvicorn starts, so a port in use is a clear error, not a log line
from a worker, and every worker process inherits the same socket.
"""

from __future__ import annotations

import socket
from typing import Any

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


#: uvicorn's settings for both servers: no uvicorn access log (the team server writes its own
#: JSON one) and no lifespan (everything is opened before uvicorn starts; it costs start-up time).
UVICORN_OPTIONS: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": "off"}


def serve(app: Any, sock: socket.socket, *, workers: int = 1, factory: str | None = None) -> None:
    """Serve on ``sock`` until Ctrl-C or SIGTERM, either of which returns normally.

    One worker serves ``app`` in this process. Several run the ``factory`` import string
    (``"module:function"``) in worker processes that share the socket; the caller puts in the
    environment what the factory needs.
    """
    import signal

    import uvicorn

    if workers <= 1:
        server = uvicorn.Server(uvicorn.Config(app, **UVICORN_OPTIONS))
        # uvicorn stops gracefully on either signal, then raises it again; SIGTERM's default
        # action would end the process before the caller's clean-up runs.
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        return
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(factory, factory=True, workers=workers, **UVICORN_OPTIONS)
    Multiprocess(config, sockets=[sock]).run()


def log_to_stderr(name: str) -> None:
    """Send a server's log lines (errors with their tracebacks) to stderr, once per process."""
    import logging

    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
