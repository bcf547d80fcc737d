"""The API's routers, one module per area."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import APIRouter


def ROUTERS() -> list[APIRouter]:
    """Every router of the server, in the order the OpenAPI document lists them."""
    from mltrail.server.routes import admin, logged_models, objects, ops, registry, tracking

    return [
        tracking.router, logged_models.router, registry.router, objects.router, admin.router,
        ops.router,
    ]  # fmt: skip
