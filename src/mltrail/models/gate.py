"""Gates for CI/CD: does a model version's source run meet metric thresholds?

``mltrail models check wine-rf@production --metric "accuracy>=0.9"`` exits non-zero when a
condition fails, so a deployment pipeline can stop on it.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidInput

if TYPE_CHECKING:
    from mltrail.tracking.client import MltrailClient

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
    ">": operator.gt, "<": operator.lt,
}  # fmt: skip
_CONDITION = re.compile(r"^\s*([^<>=!\s]+)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Condition:
    """``metric op threshold``, e.g. ``accuracy >= 0.9``."""

    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"

    def holds(self, value: float | None) -> bool:
        """True when ``value`` satisfies the condition (a missing or NaN value never does)."""
        if value is None or math.isnan(value):
            return False
        return _OPERATORS[self.op](value, self.threshold)


@dataclass(frozen=True)
class ConditionResult:
    """One condition and the value it was checked against."""

    condition: Condition
    value: float | None
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"condition": str(self.condition), "value": self.value, "passed": self.passed}


@dataclass(frozen=True)
class GateResult:
    """The verdict on one model version."""

    model_uri: str
    name: str | None
    version: int | None
    run_id: str | None
    results: list[ConditionResult]

    @property
    def passed(self) -> bool:
        """True when every condition holds."""
        return all(r.passed for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "model_uri": self.model_uri,
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "passed": self.passed,
            "results": [r.to_dict() for r in self.results],
        }


def parse_condition(text: str) -> Condition:
    """Parse ``accuracy>=0.9``; anything else raises InvalidInput showing the expected form."""
    match = _CONDITION.match(text)
    if match is None:
        raise InvalidInput(
            f"cannot read the condition {text!r}",
            hint="Write METRIC OP NUMBER, e.g. 'accuracy>=0.9' (OP: >= <= > < == !=).",
        )
    metric, op, raw = match.groups()
    try:
        threshold = float(raw)
    except ValueError:
        raise InvalidInput(
            f"the threshold in {text!r} is not a number: {raw!r}",
            hint="Write METRIC OP NUMBER, e.g. 'accuracy>=0.9'.",
        ) from None
    return Condition(metric, op, threshold)


def check_model(
    client: MltrailClient, model_uri: str, conditions: Sequence[str | Condition]
) -> GateResult:
    """Check the latest metric values of the run behind ``model_uri`` against ``conditions``."""
    parsed = [c if isinstance(c, Condition) else parse_condition(c) for c in conditions]
    if not parsed:
        raise InvalidInput("no condition to check", hint="Pass --metric 'accuracy>=0.9'.")
    resolved = client.resolve_model_uri(model_uri)
    metrics: dict[str, float] = {}
    if resolved.run_id is not None:
        metrics = dict(client.get_run(resolved.run_id).data.metrics)
    results = [
        ConditionResult(c, metrics.get(c.metric), c.holds(metrics.get(c.metric))) for c in parsed
    ]
    return GateResult(model_uri, resolved.name, resolved.version, resolved.run_id, results)
