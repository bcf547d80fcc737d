"""The experiments list: every experiment the user may see, its run count and last activity."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mltrail.access import allow, visible_experiment
from mltrail.entities import ViewType
from mltrail.ui.app import State, Who, render

router = APIRouter(include_in_schema=False)


@router.get("/experiments")
def experiments_page(request: Request, who: Who, state: State) -> Response:
    """Experiments, most recently active first."""
    allow(who, "read")
    shown = [
        e
        for e in state.store.list_experiments(ViewType.ACTIVE_ONLY)
        if visible_experiment(who, e.experiment_id)
    ]
    summaries = state.store.experiment_summaries([e.experiment_id for e in shown])
    rows = [(e, *summaries.get(e.experiment_id, (0, 0))) for e in shown]
    rows.sort(key=lambda r: max(r[2], r[0].last_update_time), reverse=True)
    return render(request, "experiments.html", rows=rows)
