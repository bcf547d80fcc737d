"""Crashed runs: a RUNNING run whose process is gone is shown KILLED, not RUNNING forever.

A run started by this library carries its process's tag (:data:`TAG_PROCESS`, see
``mltrail.process``) and, while it runs, a heartbeat tag refreshed every
:data:`HEARTBEAT_SECONDS`. A reader on the run's own host asks the kernel whether that process
still lives; any other reader goes by the heartbeat's age (``MLTRAIL_HEARTBEAT_TIMEOUT``
seconds, default :data:`DEFAULT_TIMEOUT_SECONDS`). The stored status stays RUNNING: a process that
was only out of touch (a server outage, a suspended laptop) ends its run as usual later.
Runs without these tags (logged by other clients, or imported) are shown as stored.
"""

from __future__ import annotations

import atexit
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from mltrail.entities import Run, RunStatus
from mltrail.process import owner_state, owner_tag, pid_of

TAG_PROCESS = "mltrail.process"
TAG_HOST = "mltrail.host"
TAG_HEARTBEAT = "mltrail.heartbeat"
#: Every tag this module keeps on a run.
TAGS = (TAG_PROCESS, TAG_HOST, TAG_HEARTBEAT)
#: How often a running run's heartbeat tag is refreshed.
HEARTBEAT_SECONDS = 30.0
#: A run whose heartbeat is older than this is taken for crashed by readers on other hosts.
DEFAULT_TIMEOUT_SECONDS = 300.0
ENV_TIMEOUT = "MLTRAIL_HEARTBEAT_TIMEOUT"


@dataclass(frozen=True, slots=True)
class Shown:
    """A run's status as it should be shown, and why it differs from the stored one."""

    status: str
    #: Why a RUNNING run is shown KILLED, in words; None when shown as stored.
    reason: str | None = None
    #: When the run ended, or for a crashed run when it was last heard of (ms).
    end_time: int | None = None

    @property
    def running(self) -> bool:
        """True while the run is (as far as anyone can tell) still running."""
        return self.status == RunStatus.RUNNING.value


def process_tags() -> dict[str, str]:
    """The tags that let a later reader tell whether this process still runs its run."""
    key, beat = heartbeat_tag()
    return {TAG_PROCESS: owner_tag(), TAG_HOST: socket.gethostname(), key: beat}


def heartbeat_tag() -> tuple[str, str]:
    """The heartbeat tag's key and this moment's value."""
    return TAG_HEARTBEAT, str(int(time.time() * 1000))


def timeout_seconds() -> float:
    """The heartbeat age from which a run is shown crashed (``MLTRAIL_HEARTBEAT_TIMEOUT``)."""
    raw = os.environ.get(ENV_TIMEOUT, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_SECONDS
    except ValueError:
        return DEFAULT_TIMEOUT_SECONDS  # a typo must not make every run look crashed
    return value if value > 0 else DEFAULT_TIMEOUT_SECONDS


def shown(run: Run, now_ms: int | None = None) -> Shown:
    """How to show ``run``'s status: KILLED with a reason when its process is known gone."""
    status = run.info.status
    if status != RunStatus.RUNNING.value:
        return Shown(status, end_time=run.info.end_time)
    tags = run.data.tags
    beat = _int(tags.get(TAG_HEARTBEAT))
    tag = tags.get(TAG_PROCESS)
    if tag is not None:
        state = owner_state(tag)
        if state == "alive":
            return Shown(status)  # quiet maybe, but alive: its heartbeat may just be queued
        if state == "dead":
            host = tags.get(TAG_HOST, "this host")
            return Shown(
                RunStatus.KILLED.value,
                f"its process (pid {pid_of(tag)} on {host}) ended without ending the run",
                beat or run.info.start_time,
            )
    if beat is None:
        return Shown(status)
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    silent = (now - beat) / 1000
    if silent <= timeout_seconds():
        return Shown(status)
    host = tags.get(TAG_HOST)
    where = f" from {host}" if host else ""
    return Shown(RunStatus.KILLED.value, f"no heartbeat{where} for {_ago(silent)}", beat)


def shown_row(run: Run) -> dict[str, object]:
    """``run.to_row()`` with the status shown, and why where it is not the stored one."""
    row = run.to_row()
    seen = shown(run)
    if seen.reason is not None:
        row.update(status=seen.status, status_reason=seen.reason)
    return row


class Heartbeat:
    """Refreshes the heartbeat tag of the runs this process runs, from one daemon thread."""

    def __init__(self, put_tag: Callable[[str, str, str], None]) -> None:
        self._put_tag = put_tag
        self._runs: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if not _heartbeats:
            # Registered after the writer's own exit drain (its module is loaded by now), so it
            # runs before it: no beat lands on a writer that has drained.
            atexit.unregister(_stop_all)
            atexit.register(_stop_all)
        _heartbeats.add(self)

    def add(self, run_id: str) -> None:
        """Beat for ``run_id`` from now on."""
        with self._lock:
            self._runs.add(run_id)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._loop, name="mltrail-heartbeat", daemon=True
                )
                self._thread.start()

    def discard(self, run_id: str) -> None:
        """Stop beating for ``run_id`` (its run ended)."""
        with self._lock:
            self._runs.discard(run_id)

    def stop(self) -> None:
        """Stop the thread (the runs left are then shown crashed once their heartbeat ages)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with self._lock:
                runs = list(self._runs)
            key, value = heartbeat_tag()
            try:
                for run_id in runs:
                    # A queue append: the writer sends it with the next batch of the run's data.
                    self._put_tag(run_id, key, value)
            except RuntimeError:
                return  # the interpreter is shutting down: no new writer thread can start


_heartbeats: weakref.WeakSet[Heartbeat] = weakref.WeakSet()


def _stop_all() -> None:
    for heartbeat in list(_heartbeats):
        heartbeat._stop.set()


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _ago(seconds: float) -> str:
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


__all__ = [
    "HEARTBEAT_SECONDS",
    "TAGS",
    "TAG_HEARTBEAT",
    "TAG_HOST",
    "TAG_PROCESS",
    "Heartbeat",
    "Shown",
    "heartbeat_tag",
    "process_tags",
    "shown",
    "shown_row",
    "timeout_seconds",
]
