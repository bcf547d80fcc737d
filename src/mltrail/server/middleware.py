"""(being written)"""

from __future__ import annotations

from typing import Any


def install(app: Any, settings: Any) -> None:
    """Add the server's middleware."""
