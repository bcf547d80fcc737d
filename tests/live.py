"""A real ``mltrail server`` app on 127.0.0.1, served by uvicorn in a thread of the test process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    """Poll until ``condition()`` is true; fail the test after ``seconds``."""
    # Tests wait on what happened, not on a clock: a busy CI machine can take seconds per step.
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still false after {seconds} s"
        time.sleep(0.01)


@contextmanager
def serve(settings: object, port: int = 0) -> Iterator[str]:
    """Serve ``create_app(settings)`` on a loopback port (a free one by default); yield its URL."""
    import uvicorn

    from mltrail.netutil import bind
    from mltrail.server.app import create_app

    app = create_app(settings)  # type: ignore[arg-type]
    # As the real server binds: asyncio sets TCP_NODELAY only on sockets made with proto TCP,
    # and without it every kept-alive request of a client waits ~40 ms for a delayed ACK.
    sock = bind("127.0.0.1", port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        app.state.mltrail.close()
        close_pools(f"http://127.0.0.1:{port}")


def close_pools(base_url: str) -> None:
    """Drop the process's pooled connections to ``base_url`` (its port may be reused later)."""
    from mltrail import transport

    with transport._pools_lock:
        for key in [k for k in transport._pools if k[0] == base_url]:
            transport._pools.pop(key).close()


@contextmanager
def spawn(args: list[str], cwd: object, env: dict[str, str]) -> Iterator[tuple[str, object]]:
    """``python -m mltrail ARGS`` (a server) in a subprocess; yield its first stdout line and it.

    The process is stopped with SIGTERM (killed after 10 s) when the block ends.
    """
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "mltrail", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline(), proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
