"""Compare 2 to 100 runs: metric overlays, params and metrics side by side (optionally only
those that differ), parallel coordinates over params and a metric, and a param/metric scatter.

``/compare?runs=a,b,c`` (the runs list's Compare button) and ``/compare?runs=a&runs=b`` (its
form without JavaScript) both work. Charts fetch their series from :mod:`.series`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mltrail.access import allow_run
from mltrail.entities import Run
from mltrail.errors import InvalidInput, NotFound
from mltrail.ui.app import State, Who, render
from mltrail.ui.pages.series import MAX_RUNS, split_ids

router = APIRouter(include_in_schema=False)

#: Fewest runs a comparison takes.
MIN_RUNS = 2
#: Params ticked for the parallel coordinates at first (those that differ, in name order).
PARCOORDS_DEFAULT = 8


@dataclass
class Row:
    """One param or metric across the runs: its values (None where a run lacks it)."""

    key: str
    values: list[Any]

    @property
    def same(self) -> bool:
        """Whether every run has it, with one value."""
        first = self.values[0]
        return first is not None and all(x == first for x in self.values)


@router.get("/compare")
def compare_page(request: Request, who: Who, state: State) -> Response:
    """The comparison of the runs named in ``runs``."""
    ids = split_ids(",".join(request.query_params.getlist("runs")))
    hint = f"Tick {MIN_RUNS} to {MAX_RUNS} runs in an experiment's run list and press Compare."
    if len(ids) < MIN_RUNS:
        named = f": {ids[0]}" if ids else ""
        raise InvalidInput(
            f"comparing needs at least {MIN_RUNS} runs; got {len(ids)}{named}", hint=hint
        )
    if len(ids) > MAX_RUNS:
        raise InvalidInput(
            f"comparing takes at most {MAX_RUNS} runs; got {len(ids)}",
            hint=f"Compare fewer runs at once. {hint}",
        )
    runs: list[Run] = []
    unknown: list[str] = []
    for run_id in ids:
        try:
            allow_run(who, state.store, run_id, "read")
            runs.append(state.store.get_run(run_id))
        except NotFound:
            unknown.append(run_id)
    if unknown:
        listed = ", ".join(unknown[:10])
        if len(unknown) > 10:
            listed += f" and {len(unknown) - 10} more"
        raise NotFound(
            f"no run with id {listed}" if len(unknown) == 1 else f"no runs with ids {listed}",
            hint="Check the ids in the address, or pick the runs again from the run list.",
        )
    experiments = {}
    for run in runs:
        eid = run.info.experiment_id
        if eid not in experiments:
            try:
                experiments[eid] = state.store.get_experiment(eid).name
            except NotFound:
                experiments[eid] = eid
    params = _rows(runs, "params")
    metrics = _rows(runs, "metrics")
    differing = [r.key for r in params if not r.same]
    data = {
        "runs": [
            {
                "id": r.info.run_id,
                "name": r.info.run_name or r.info.run_id[:8],
                "params": r.data.params,
                "metrics": {k: _json_number(x) for k, x in r.data.metrics.items()},
            }
            for r in runs
        ],
        "params": [r.key for r in params],
        "metrics": [r.key for r in metrics],
        "parcoords": differing[:PARCOORDS_DEFAULT],
    }
    return render(
        request,
        "compare.html",
        area="experiments",
        runs=runs,
        experiments=experiments,
        params=params,
        metrics=metrics,
        params_differing=len(differing),
        metrics_differing=sum(1 for r in metrics if not r.same),
        data=data,
    )


def _rows(runs: list[Run], field: str) -> list[Row]:
    """Every key of ``field`` (params or metrics) any run has, by name, with each run's value."""
    keys = sorted({k for r in runs for k in getattr(r.data, field)})
    return [Row(k, [getattr(r.data, field).get(k) for r in runs]) for k in keys]


def _json_number(value: float) -> float | None:
    """A metric value JSON can carry: NaN and ±inf become null."""
    return value if value == value and value not in (float("inf"), float("-inf")) else None
