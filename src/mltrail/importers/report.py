"""What every import reports beside its counts: the items it left out, each with its reason."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Skipped:
    """Something left out of an import, and why."""

    what: str
    reason: str


class Report:
    """What every import's report can do: become JSON (``--json``)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)  # type: ignore[call-overload]


__all__ = ["Report", "Skipped"]
