"""The fields of one MLflow API request, read with MLflow's rules and errors.

A GET request carries its fields as query parameters (a repeated field as the key repeated), the
other methods as a JSON object; MLflow's server parses both into the same protobuf message, so
numbers may come as JSON numbers or as strings and unknown fields are ignored. A missing required
field or a value of the wrong type is ``INVALID_PARAMETER_VALUE``, as MLflow answers it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mltrail.errors import InvalidInput

_INT64 = 2**63


def missing(name: str) -> InvalidInput:
    """The error for a required field the request lacks (MLflow's wording)."""
    return InvalidInput(
        f"Missing value for required parameter '{name}'. See the API docs for more information "
        "about request parameters."
    )


def bad(name: str, value: object, expected: str) -> InvalidInput:
    """The error for a field of the wrong type."""
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    return InvalidInput(f"Invalid value {shown} for parameter '{name}': expected {expected}.")


class Fields:
    """Typed access to a request's fields; every accessor raises InvalidInput on a bad value."""

    def __init__(self, data: Mapping[str, Any] | None, *, query: bool = False) -> None:
        self._data = dict(data or {})
        # Query parameters arrive as lists of strings (a key may repeat).
        self._query = query

    @classmethod
    def of_query(cls, items: list[tuple[str, str]]) -> Fields:
        """The fields of a GET request's query string (repeated keys kept as lists)."""
        data: dict[str, list[str]] = {}
        for key, value in items:
            data.setdefault(key, []).append(value)
        return cls(data, query=True)

    def with_values(self, values: dict[str, str]) -> Fields:
        """These fields with ``values`` set (a path's segments win over the body's)."""
        data = dict(self._data)
        data.update({k: [x] if self._query else x for k, x in values.items()})
        return Fields(data, query=self._query)

    def raw(self, name: str) -> Any:
        """The field as sent (the last value of a repeated query key), or None."""
        value = self._data.get(name)
        if self._query and isinstance(value, list):
            return value[-1] if value else None
        return value

    def has(self, name: str) -> bool:
        """Whether the request sets the field."""
        return self.raw(name) not in (None, "")

    def str(self, name: str, *, required: bool = False, default: str | None = None) -> Any:
        """A string field; numbers and booleans are refused as MLflow's parser refuses them."""
        value = self.raw(name)
        if value is None or value == "":
            if required:
                raise missing(name)
            return default
        if not isinstance(value, str):
            raise bad(name, value, "a string")
        return value

    def int(
        self,
        name: str,
        *,
        required: bool = False,
        default: int | None = None,
        low: int = -_INT64,
        high: int = _INT64 - 1,
    ) -> Any:
        """An integer field (a JSON number without fraction, or its decimal string)."""
        value = self.raw(name)
        if value is None or value == "":
            if required:
                raise missing(name)
            return default
        number: int | None = None
        if isinstance(value, bool):
            number = None
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str):
            text = value.strip()
            digits = text[1:] if text[:1] in "+-" else text
            if digits.isascii() and digits.isdigit():
                number = int(text)
        if number is None:
            raise bad(name, value, "an integer")
        if not low <= number <= high:
            raise InvalidInput(
                f"Invalid value {number} for parameter '{name}': it must be between {low} and "
                f"{high}."
            )
        return number

    def float(self, name: str, *, required: bool = False) -> Any:
        """A double field: a number, or "NaN", "Infinity", "-Infinity" (or a decimal string)."""
        value = self.raw(name)
        if value is None or value == "":
            if required:
                raise missing(name)
            return None
        if isinstance(value, bool):
            raise bad(name, value, "a number")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            special = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf}
            if value.strip().lower() in special:
                return special[value.strip().lower()]
            try:
                return float(value)
            except ValueError:
                pass
        raise bad(name, value, "a number")

    def bool(self, name: str, *, default: bool = False) -> Any:
        """A boolean field (``true``/``false`` in a query string)."""
        value = self.raw(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise bad(name, value, "true or false")

    def list(self, name: str) -> list[Any]:
        """A repeated field (an empty list when absent)."""
        value = self._data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            if self._query:
                return [value]
            raise bad(name, value, "a list")
        return value

    def strings(self, name: str) -> list[str]:
        """A repeated string field."""
        values = self.list(name)
        for value in values:
            if not isinstance(value, str):
                raise bad(name, value, "a list of strings")
        return values

    def objects(self, name: str) -> list[Fields]:
        """A repeated message field, each item as Fields of its own."""
        items = []
        for value in self.list(name):
            if not isinstance(value, dict):
                raise bad(name, value, "a list of objects")
            items.append(Fields(value))
        return items

    def object(self, name: str) -> Fields:
        """A message field (empty Fields when absent)."""
        value = self._data.get(name)
        if value is None:
            return Fields({})
        if not isinstance(value, dict):
            raise bad(name, value, "an object")
        return Fields(value)

    def key_values(self, name: str = "tags") -> dict[str, str]:
        """A repeated ``{key, value}`` field as a dict (a later key wins, as in MLflow)."""
        found: dict[str, str] = {}
        for item in self.objects(name):
            key = item.str("key", required=True)
            value = item.raw("value")
            found[key] = "" if value is None else value if isinstance(value, str) else str(value)
        return found

    def run_id(self) -> str:
        """``run_id``, or the older ``run_uuid`` that MLflow 1.x clients send."""
        run_id = self.str("run_id") or self.str("run_uuid")
        if not run_id:
            raise missing("run_id")
        return run_id
