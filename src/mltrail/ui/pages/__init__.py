"""The UI's pages, one module per area; each exposes a FastAPI ``router``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import APIRouter


def PAGES() -> list[APIRouter]:
    """Every page router of the UI."""
    from mltrail.ui.pages import compare, datasets, experiments, lineage, models, run, runs, series

    return [
        experiments.router,
        runs.router,
        models.router,
        datasets.router,
        lineage.router,
        run.router,
        compare.router,
        series.router,
    ]
