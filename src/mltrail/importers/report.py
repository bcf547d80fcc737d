"""What every import reports beside its counts: the items it left out, each with its reason."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Skipped:
    """Something left out of an import, and why."""

    what: str
    reason: str


__all__ = ["Skipped"]
