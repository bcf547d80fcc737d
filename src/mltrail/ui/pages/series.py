"""Metric series for the charts, as JSON under ``/ui/data/`` (errors there are JSON too).

``GET /ui/data/runs/{run_id}/metrics/{key}?points=N`` gives one run's series;
``GET /ui/data/metrics/{key}?runs=a,b,c&points=N`` gives the same for several runs at once (the
compare page: one request per chart, not one per run and chart). Long series come downsampled
(:mod:`mltrail.ui.downsample`), with ``total`` the number of points logged. ``step`` and
``time`` (ms since the epoch) come together, so a chart changes its x axis without asking again.
``NaN`` and ``±inf`` are not JSON: such values are ``null`` (a gap in the line).
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response

from mltrail.access import allow_run
from mltrail.errors import InvalidInput
from mltrail.server.app import ServerState
from mltrail.ui.app import State, Who
from mltrail.ui.downsample import DEFAULT_POINTS, MIN_POINTS, keep_indices

router = APIRouter(include_in_schema=False)

#: The most points a chart may ask for per series (a bound on work and reply size).
MAX_POINTS = 20_000
#: The most runs one request may name (the compare page's limit).
MAX_RUNS = 100


def series(state: ServerState, run_id: str, key: str, points: int) -> dict[str, Any]:
    """One run's metric ``key``, at most ``points`` points, ready for JSON."""
    import numpy as np

    # The store may cut a very long series down itself (SQLite does, in SQL): about half the
    # points are bucket minima and half maxima, plus both ends.
    steps, times, values, total = state.store.metric_arrays(run_id, key, buckets=(points - 2) // 2)
    if len(values) > points:
        keep = keep_indices(np.asarray(values, dtype=np.float64), points)
        steps = np.asarray(steps, dtype=np.int64)[keep].tolist()
        times = np.asarray(times, dtype=np.int64)[keep].tolist()
        values = np.asarray(values, dtype=np.float64)[keep].tolist()
    return {
        "run_id": run_id,
        "key": key,
        "total": total,
        "downsampled": len(values) < total,
        "step": list(steps),
        "time": list(times),
        "value": [v if math.isfinite(v) else None for v in values],
    }


def check_points(points: int) -> int:
    """``points`` if it is a sensible budget, else :class:`InvalidInput` naming the bounds."""
    if not MIN_POINTS <= points <= MAX_POINTS:
        raise InvalidInput(
            f"points must be between {MIN_POINTS} and {MAX_POINTS}, got {points}",
            hint=f"Leave it out for {DEFAULT_POINTS}.",
        )
    return points


@router.get("/ui/data/runs/{run_id}/metrics/{key:path}")
def run_metric(
    run_id: str, key: str, who: Who, state: State, points: int = DEFAULT_POINTS
) -> Response:
    """One run's metric series, downsampled to at most ``points`` points."""
    allow_run(who, state.store, run_id, "read")
    return JSONResponse(series(state, run_id, key, check_points(points)))


@router.get("/ui/data/metrics/{key:path}")
def runs_metric(
    key: str, runs: str, who: Who, state: State, points: int = DEFAULT_POINTS // 2
) -> Response:
    """The series of metric ``key`` for each run of ``runs`` (comma-separated ids)."""
    ids = split_ids(runs)
    if not ids or len(ids) > MAX_RUNS:
        raise InvalidInput(f"runs must name 1 to {MAX_RUNS} run ids, got {len(ids)}")
    check_points(points)
    out = []
    for run_id in ids:
        allow_run(who, state.store, run_id, "read")
        out.append(series(state, run_id, key, points))
    return JSONResponse({"key": key, "runs": out})


def split_ids(text: str) -> list[str]:
    """Run ids from a comma-separated list: blanks dropped, repeats once, order kept."""
    return list(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
