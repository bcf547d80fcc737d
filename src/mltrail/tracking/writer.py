"""The background writer: log calls enqueue and return, one thread batches them into the store.

It is the only thread of a process that writes to the store, which keeps SQLite free of lock
contention inside a process and preserves order: a synchronous operation (params, end of run)
waits until every point queued before it is written. ``flush()`` drains; so does interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from mltrail.entities import Metric, RunBatch
from mltrail.errors import MltrailError, StoreError
from mltrail.store.base import TrackingStore
from mltrail.store.db_errors import is_database_error, is_transient, store_error

log = logging.getLogger(__name__)

_METRIC = 0
_TAG = 1
_CALL = 2
_STOP = 3

#: Points written per transaction at most; larger bursts are split.
MAX_BATCH = 20_000
#: How long a write is retried when the database is unavailable (locked, restarting).
RETRY_SECONDS = 120.0
#: While a spooling store has writes waiting for its server, items are gathered this long so
#: that an outage makes few large records rather than many small ones.
BACKLOG_GATHER_SECONDS = 0.2

_writers: weakref.WeakSet[BackgroundWriter] = weakref.WeakSet()


class BackgroundWriter:
    """Queues metric points and tags for one store and writes them in batches from one thread."""

    def __init__(self, store: TrackingStore) -> None:
        self.store = store
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._errors: dict[str, list[Exception]] = {}
        _writers.add(self)

    # -- enqueue (hot path) ----------------------------------------------------------------
    def put_metric(self, run_id: str, metric: Metric) -> None:
        """Queue one metric point."""
        self._queue.put((_METRIC, run_id, metric))
        if self._thread is None:
            self._start()

    def put_tag(self, run_id: str, key: str, value: str) -> None:
        """Queue one tag."""
        self._queue.put((_TAG, run_id, (key, value)))
        if self._thread is None:
            self._start()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the writer thread after everything queued before it; return its result."""
        future: Future = Future()
        self._queue.put((_CALL, None, (fn, future)))
        if self._thread is None:
            self._start()
        return future.result()

    def flush(self) -> None:
        """Block until every queued item is in the store."""
        if self._thread is not None:
            self.call(lambda: None)

    def take_errors(self, run_id: str | None = None) -> list[Exception]:
        """Return and forget write errors (of one run, or all)."""
        if run_id is None:
            errors = [e for errs in self._errors.values() for e in errs]
            self._errors.clear()
            return errors
        return self._errors.pop(run_id, [])

    def close(self) -> None:
        """Drain the queue and stop the thread."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put((_STOP, None, None))
            self._thread.join()
        self._thread = None

    # -- writer thread ---------------------------------------------------------------------
    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._loop, name="mltrail-writer", daemon=True)
                thread.start()
                self._thread = thread

    def _loop(self) -> None:
        get, get_nowait = self._queue.get, self._queue.get_nowait
        backlog = getattr(self.store, "backlog", None)
        while True:
            items = [get()]
            if backlog is not None and backlog() and items[0][0] != _CALL:
                time.sleep(BACKLOG_GATHER_SECONDS)
            # Whatever arrived while the last batch was being written goes into this one.
            try:
                while len(items) < MAX_BATCH:
                    items.append(get_nowait())
            except queue.Empty:
                pass
            if not self._process(items):
                return

    def _process(self, items: list) -> bool:
        pending: dict[str, RunBatch] = {}
        for kind, run_id, payload in items:
            if kind == _METRIC:
                batch = pending.get(run_id)
                if batch is None:
                    batch = pending[run_id] = RunBatch(run_id)
                batch.metrics.append(payload)
            elif kind == _TAG:
                batch = pending.get(run_id)
                if batch is None:
                    batch = pending[run_id] = RunBatch(run_id)
                batch.tags[payload[0]] = payload[1]
            elif kind == _CALL:
                self._write(pending)
                pending = {}
                fn, future = payload
                try:
                    future.set_result(_retrying(fn))
                except BaseException as exc:  # handed to the caller, who re-raises it
                    future.set_exception(store_error(exc) if is_database_error(exc) else exc)
            else:
                self._write(pending)
                return False
        self._write(pending)
        return True

    def _write(self, pending: dict[str, RunBatch]) -> None:
        if not pending:
            return
        batches = list(pending.values())
        try:
            errors = _retrying(lambda: self.store.write_batches(batches))
        except Exception as exc:
            error = store_error(exc) if is_database_error(exc) else exc
            errors = {b.run_id: error for b in batches}
        for run_id, exc in errors.items():
            earlier = self._errors.setdefault(run_id, [])
            earlier.append(exc)
            # Once per run: a full disk fails every batch after it, and the run's end says how
            # many writes failed.
            warn = log.warning if len(earlier) == 1 else log.debug
            warn("mltrail: data for run %s was not stored: %s", run_id, exc)

    def errors_of(self, run_id: str) -> list[Exception]:
        """A run's write errors not taken yet (kept for :meth:`take_errors`)."""
        return list(self._errors.get(run_id, ()))

    def _after_fork(self) -> None:
        # The child inherits the queue's contents but not the thread; the parent writes them.
        self._queue = queue.SimpleQueue()
        self._thread = None
        self._start_lock = threading.Lock()


def _retrying(fn: Callable[[], Any]) -> Any:
    """Call ``fn``, waiting out a locked or restarting database; other failures raise at once."""
    deadline = time.monotonic() + RETRY_SECONDS
    delay = 0.05
    while True:
        try:
            return fn()
        except Exception as exc:
            # Nothing acknowledged may be dropped, so a lock or a restart is waited for; a full
            # disk is not, as waiting would only hide it.
            if not (is_database_error(exc) and is_transient(exc)):
                raise
            if time.monotonic() > deadline:
                raise _unavailable(exc) from None
            log.debug("store unavailable, retrying in %.2fs: %s", delay, exc)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _unavailable(exc: BaseException) -> MltrailError:
    error = store_error(exc)
    return StoreError(f"the store stayed unavailable for {RETRY_SECONDS:.0f}s: {error.message}")


def _drain_all() -> None:
    for writer in list(_writers):
        try:
            writer.close()
            # Then what a spooling store holds for its server, within its flush timeout.
            finish = getattr(writer.store, "finish", None)
            if finish is not None:
                finish()
        except Exception as exc:  # never turn interpreter exit into a traceback
            log.warning("mltrail: could not drain the logging queue: %s", exc)


def _reset_after_fork() -> None:
    for writer in list(_writers):
        writer._after_fork()


atexit.register(_drain_all)
os.register_at_fork(after_in_child=_reset_after_fork)
