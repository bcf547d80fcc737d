"""What ``/metrics`` reports: request counts and latencies, and counters the routes increment.

Everything is kept per process. A server started with ``--workers N`` has N sets of counters, and
a scrape through the shared port reaches whichever worker accepts it; every series therefore
carries a ``worker`` label (the process id), so each worker's counters stay one series that only
ever goes up, and ``sum by (route) (rate(...))`` adds the workers up.

Routes count what only they know with :func:`count`, e.g. ``count("metric_points", len(points))``;
the names are fixed in :data:`COUNTERS` so a typo fails the first test that reaches it.
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable

#: Upper bounds (seconds) of the latency histogram's buckets.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Counters routes may increment, reported as ``mltrail_<name>_total``: name → help text.
COUNTERS: dict[str, str] = {
    "metric_points": "Metric points written to the store.",
    "write_batches": "Write batches (metrics, params and tags of runs) received.",
    "runs_created": "Runs created.",
    "model_versions_created": "Model versions registered.",
    "objects_uploaded": "Objects uploaded through the server.",
    "object_bytes_uploaded": "Bytes of objects uploaded through the server.",
    "object_bytes_downloaded": "Bytes of objects sent from a local object store (whole files).",
    "mlflow_calls": "Calls of MLflow's REST API (/api/2.0/mlflow/...).",
}

#: Method labels; anything else a client sends is counted as "other" to keep series bounded.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: The content type of the Prometheus text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: A gauge computed at scrape time: (name, help, value).
Gauge = tuple[str, str, float]


class Registry:
    """Counters of one process; the lock makes increments from handler threads exact."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.time()
        self.in_flight = 0
        self.bytes_in = 0
        self.bytes_out = 0
        #: (method, route, status class) → requests
        self.requests: dict[tuple[str, str, str], int] = {}
        #: (method, route) → [count per bucket (the last one is +Inf)..., sum of seconds]
        self.latency: dict[tuple[str, str], list[float]] = {}
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to one of :data:`COUNTERS`."""
        if name not in self.counters:
            raise KeyError(f"unknown counter {name!r}; add it to mltrail.server.metrics.COUNTERS")
        with self._lock:
            self.counters[name] += n

    def started_request(self) -> None:
        """A request came in."""
        with self._lock:
            self.in_flight += 1

    def finished_request(
        self, method: str, route: str, status: int, seconds: float, bytes_in: int, bytes_out: int
    ) -> None:
        """A request was answered (or failed) after ``seconds``."""
        if method not in METHODS:
            method = "other"
        key = (method, route, f"{status // 100}xx")
        bucket = bisect_left(BUCKETS, seconds)
        with self._lock:
            self.in_flight -= 1
            self.bytes_in += bytes_in
            self.bytes_out += bytes_out
            self.requests[key] = self.requests.get(key, 0) + 1
            hist = self.latency.get((method, route))
            if hist is None:
                hist = self.latency[(method, route)] = [0] * (len(BUCKETS) + 1) + [0.0]
            hist[bucket] += 1
            hist[-1] += seconds

    def render(self, gauges: Iterable[Gauge] = ()) -> str:
        """Everything in the Prometheus text exposition format (version 0.0.4)."""
        with self._lock:
            requests = sorted(self.requests.items())
            latency = sorted((k, list(v)) for k, v in self.latency.items())
            counters = dict(self.counters)
            in_flight, bytes_in, bytes_out = self.in_flight, self.bytes_in, self.bytes_out
        worker = f'worker="{os.getpid()}"'
        out: list[str] = []

        def head(name: str, kind: str, help: str) -> None:
            out.append(f"# HELP {name} {help}")
            out.append(f"# TYPE {name} {kind}")

        name = "mltrail_http_requests_total"
        head(name, "counter", "HTTP requests answered, by method, route template and status class.")
        for (method, route, status), n in requests:
            labels = f'{worker},method="{method}",route="{_label(route)}",status="{status}"'
            out.append(f"{name}{{{labels}}} {n}")

        name = "mltrail_http_request_duration_seconds"
        head(name, "histogram", "Time from a request's arrival to its last response byte.")
        for (method, route), hist in latency:
            labels = f'{worker},method="{method}",route="{_label(route)}"'
            total = 0
            for bound, n in zip((*map(repr, BUCKETS), "+Inf"), hist[:-1], strict=True):
                total += int(n)
                out.append(f'{name}_bucket{{{labels},le="{bound}"}} {total}')
            out.append(f"{name}_sum{{{labels}}} {hist[-1]!r}")
            out.append(f"{name}_count{{{labels}}} {total}")

        head("mltrail_http_requests_in_flight", "gauge", "Requests being answered right now.")
        out.append(f"mltrail_http_requests_in_flight{{{worker}}} {in_flight}")
        head("mltrail_http_request_bytes_total", "counter", "Request body bytes read.")
        out.append(f"mltrail_http_request_bytes_total{{{worker}}} {bytes_in}")
        head("mltrail_http_response_bytes_total", "counter", "Response body bytes sent.")
        out.append(f"mltrail_http_response_bytes_total{{{worker}}} {bytes_out}")

        for key, help in COUNTERS.items():
            name = f"mltrail_{key}_total"
            head(name, "counter", help)
            out.append(f"{name}{{{worker}}} {counters[key]}")

        head("process_start_time_seconds", "gauge", "Start time of the process (Unix seconds).")
        out.append(f"process_start_time_seconds{{{worker}}} {self.started:.3f}")
        rss = _rss_bytes()
        if rss is not None:
            head("process_resident_memory_bytes", "gauge", "Resident memory of the process.")
            out.append(f"process_resident_memory_bytes{{{worker}}} {rss}")
        for name, help, value in gauges:
            head(name, "gauge", help)
            out.append(f"{name}{{{worker}}} {value!r}")
        return "\n".join(out) + "\n"


def _label(value: str) -> str:
    """A label value escaped as the text format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _rss_bytes() -> int | None:
    # /proc is Linux only; elsewhere the gauge is left out rather than guessed.
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


#: The counters of this process.
REGISTRY = Registry()


def count(name: str, n: int = 1) -> None:
    """Add ``n`` to the process's counter ``name`` (one of :data:`COUNTERS`)."""
    REGISTRY.count(name, n)
