"""Model signatures: what a model takes and returns, inferred from an example, enforced on input.

The JSON form is MLflow's (a list of column specs, or one tensor spec), so signatures read the
same in both tools. A column signature is enforced by name: a missing column, an unexpected one
or a value of the wrong type is refused with a message naming the column, rather than letting
the model fail on it (or, worse, silently predict on shuffled columns).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from mltrail.errors import InvalidInput

# Column types, MLflow's names. Integer columns widen to double; nothing narrows silently.
COLUMN_TYPES = ("boolean", "integer", "long", "float", "double", "string", "binary", "datetime")
_MAX_NAMES_SHOWN = 8


@dataclass(frozen=True, slots=True)
class ColSpec:
    """One named input column, its type, and whether every row must have a value.

    ``required`` is MLflow's flag: a required column must be present and, here, hold a value in
    every row (no null, no NaN); an optional one may be left out or hold missing values. A
    signature inferred from an example marks optional the columns where the example has gaps.
    """

    name: str
    type: str
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The MLflow JSON form."""
        return {"type": self.type, "name": self.name, "required": self.required}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One array input: numpy dtype and shape, -1 for a free dimension."""

    dtype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """The MLflow JSON form."""
        return {"type": "tensor", "tensor-spec": {"dtype": self.dtype, "shape": list(self.shape)}}


@dataclass(frozen=True, slots=True)
class Schema:
    """Either named columns or a single tensor."""

    columns: tuple[ColSpec, ...] = ()
    tensor: TensorSpec | None = None

    @property
    def names(self) -> list[str]:
        """Column names in order (empty for a tensor schema)."""
        return [c.name for c in self.columns]

    def to_json(self) -> str:
        """The JSON string stored in the MLmodel file."""
        specs = [self.tensor.to_dict()] if self.tensor else [c.to_dict() for c in self.columns]
        return json.dumps(specs)

    @classmethod
    def from_json(cls, text: str) -> Schema:
        """Parse the JSON string of a schema; raise InvalidInput when it is not one."""
        try:
            specs = json.loads(text)
            if not isinstance(specs, list) or not specs:
                raise ValueError("expected a non-empty list of column or tensor specs")
            if specs[0].get("type") == "tensor":
                spec = specs[0]["tensor-spec"]
                return cls(
                    tensor=TensorSpec(str(spec["dtype"]), tuple(int(d) for d in spec["shape"]))
                )
            columns = []
            for i, s in enumerate(specs):
                if s.get("type") not in COLUMN_TYPES:
                    raise ValueError(f"column {i} has unknown type {s.get('type')!r}")
                required = s.get("required", True)
                if not isinstance(required, bool):
                    raise ValueError(f"column {i} has a non-boolean 'required': {required!r}")
                columns.append(ColSpec(str(s.get("name", i)), s["type"], required))
            return cls(columns=tuple(columns))
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise InvalidInput(f"not a valid model schema: {e}") from None

    def describe(self) -> str:
        """A short human form: ``alcohol: double, ash: double`` or ``tensor float64 (-1, 13)``."""
        if self.tensor:
            return f"tensor {self.tensor.dtype} {tuple(self.tensor.shape)}"
        return ", ".join(f"{c.name}: {c.type}" for c in self.columns)


@dataclass(frozen=True, slots=True)
class Signature:
    """A model's input schema and, when known, its output schema."""

    inputs: Schema
    outputs: Schema | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``signature`` mapping of the MLmodel file."""
        return {
            "inputs": self.inputs.to_json(),
            "outputs": self.outputs.to_json() if self.outputs else None,
            "params": None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Signature:
        """Read the ``signature`` mapping of an MLmodel file."""
        if not isinstance(d, dict) or not d.get("inputs"):
            raise InvalidInput("the signature has no inputs")
        outputs = Schema.from_json(d["outputs"]) if d.get("outputs") else None
        return cls(Schema.from_json(d["inputs"]), outputs)


# -- inference -------------------------------------------------------------------------------
def infer_signature(model_input: Any, model_output: Any = None) -> Signature:
    """Infer a signature from an example input (DataFrame, array, dict or list) and output."""
    inputs = infer_schema(model_input)
    outputs = infer_schema(model_output) if model_output is not None else None
    return Signature(inputs, outputs)


def infer_schema(data: Any) -> Schema:
    """Infer the schema of one example value."""
    import numpy as np
    import pandas as pd

    data = as_data(data)
    if isinstance(data, pd.Series):
        data = data.to_frame(name=str(data.name) if data.name is not None else "0")
    if isinstance(data, pd.DataFrame):
        columns = tuple(
            ColSpec(str(name), _column_type(data[name]), not bool(data[name].isna().any()))
            for name in data.columns
        )
        if not columns:
            raise InvalidInput("cannot infer a signature from a frame with no columns")
        return Schema(columns=columns)
    array = np.asarray(data)
    if array.dtype == object:
        raise InvalidInput(
            "cannot infer a signature from an array of Python objects",
            hint="Pass the input example as a pandas DataFrame or a numeric numpy array.",
        )
    shape = (-1, *array.shape[1:]) if array.ndim else ()
    return Schema(tensor=TensorSpec(str(array.dtype), shape))


def as_data(data: Any) -> Any:
    """Dicts of columns and lists of records as a DataFrame; anything else as it is."""
    import pandas as pd

    if isinstance(data, dict):
        try:
            return pd.DataFrame(data)
        except ValueError:
            return pd.DataFrame([data])
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return pd.DataFrame.from_records(data)
    return data


def _column_type(col: Any) -> str:
    import pandas as pd
    from pandas.api import types as pt

    dtype = col.dtype
    if pt.is_bool_dtype(dtype):
        return "boolean"
    if pt.is_integer_dtype(dtype):
        return "long" if dtype.itemsize >= 8 else "integer"
    if pt.is_float_dtype(dtype):
        return "float" if dtype.itemsize == 4 else "double"
    if pt.is_datetime64_any_dtype(dtype):
        return "datetime"
    values = col.dropna()
    if len(values) and all(isinstance(v, bytes | bytearray) for v in values):
        return "binary"
    if pt.is_string_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "string"
    raise InvalidInput(
        f"cannot infer a type for column {col.name!r} (dtype {dtype})",
        hint="Convert it to numbers, booleans, strings or datetimes, or pass signature=.",
    )


# -- enforcement -----------------------------------------------------------------------------
def to_model_input(data: Any, schema: Schema | None) -> Any:
    """Turn user input into what the model takes, checked against ``schema`` when there is one."""
    import numpy as np
    import pandas as pd

    data = as_data(data)
    if schema is None:
        return data
    if schema.tensor is not None:
        return _enforce_tensor(data, schema.tensor)
    if isinstance(data, pd.Series):
        data = data.to_frame().T if data.name is None else data.to_frame()
    if not isinstance(data, pd.DataFrame):
        array = np.asarray(data)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[1] != len(schema.columns):
            raise InvalidInput(
                f"expected {len(schema.columns)} columns ({_names(schema.names)}); "
                f"got an array of shape {array.shape}"
            )
        data = pd.DataFrame(array, columns=schema.names)
    return _enforce_columns(data, schema)


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_MAX_NAMES_SHOWN])
    return shown + (
        f" and {len(names) - _MAX_NAMES_SHOWN} more" if len(names) > _MAX_NAMES_SHOWN else ""
    )


def _enforce_columns(frame: Any, schema: Schema) -> Any:
    import pandas as pd

    if len(frame.index) == 0:
        raise InvalidInput("the input has no rows")
    given = [str(c) for c in frame.columns]
    frame = frame.set_axis(given, axis=1)
    missing = [c.name for c in schema.columns if c.required and c.name not in given]
    wanted = set(schema.names)
    extra = [n for n in given if n not in wanted]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {_names(missing)}")
        if extra:
            parts.append(f"unexpected column(s) {_names(extra)}")
        raise InvalidInput(
            "; ".join(parts),
            hint=f"The model takes {len(schema.names)} columns: {_names(schema.names)}.",
        )
    absent = pd.Series([None] * len(frame.index), index=frame.index, dtype=object)
    out = {
        c.name: _enforce_column(frame[c.name] if c.name in given else absent, c)
        for c in schema.columns
    }
    return pd.DataFrame(out, index=frame.index)


def _enforce_column(col: Any, spec: ColSpec) -> Any:
    from pandas.api import types as pt

    dtype = col.dtype
    kind = spec.type
    if kind in ("double", "float"):
        if pt.is_bool_dtype(dtype) or not pt.is_numeric_dtype(dtype):
            _check_values(col, spec, lambda v: v is None or _is_number(v))
        if spec.required:
            _check_present(col, spec)
        out = col.astype("float32" if kind == "float" else "float64")
        _check_finite(col, out, spec)
        return out
    if spec.required or kind in ("long", "integer", "boolean"):
        _check_present(col, spec)  # numpy has no missing integer or boolean
    if kind in ("long", "integer"):
        if not pt.is_integer_dtype(dtype) or pt.is_bool_dtype(dtype):
            _check_values(col, spec, lambda v: _is_number(v) and float(v).is_integer())
        return col.astype("int64" if kind == "long" else "int32")
    if kind == "boolean":
        if not pt.is_bool_dtype(dtype):
            _check_values(col, spec, lambda v: isinstance(v, bool))
        return col.astype(bool)
    if kind == "string":
        _check_values(col, spec, lambda v: v is None or isinstance(v, str))
        return col.astype(object)
    if kind == "binary":
        _check_values(col, spec, lambda v: isinstance(v, bytes | bytearray))
        return col
    import pandas as pd

    try:
        return pd.to_datetime(col)
    except (ValueError, TypeError):
        _check_values(col, spec, lambda v: False)
        raise


def _is_number(v: Any) -> bool:
    import numpy as np

    if isinstance(v, bool | np.bool_):
        return False
    return isinstance(v, int | float | np.number)


def _check_present(col: Any, spec: ColSpec) -> None:
    """Refuse a missing value (null, NaN) in a column the signature requires in every row."""
    gaps = col.isna().to_numpy().nonzero()[0]
    if len(gaps):
        row = int(gaps[0])
        why = (
            f"the model's signature requires a {spec.type} value in every row"
            if spec.required
            else f"a {spec.type} column cannot hold one"
        )
        raise InvalidInput(
            f"column {spec.name!r} has a missing value (null or NaN) in row {row}; {why}",
            hint="Send a value for every row of that column (the model was saved with an "
            "example that had none missing).",
        )


def _check_finite(col: Any, out: Any, spec: ColSpec) -> None:
    """Refuse infinities (1e999, Infinity) and numbers too large for a float column."""
    import numpy as np

    values = out.to_numpy()
    bad = np.isinf(values).nonzero()[0]
    if len(bad):
        row = int(bad[0])
        raise InvalidInput(
            f"column {spec.name!r} expects finite {spec.type} values; got "
            f"{'-' if values[row] < 0 else ''}Infinity in row {row}",
            hint="Send finite numbers (1e999 and Infinity read as infinite"
            + (", and a float column ends near 3.4e38)." if spec.type == "float" else ")."),
        )


def _check_values(col: Any, spec: ColSpec, ok: Any) -> None:
    # Name the first offending value and its row, so a 1000-row request points at the culprit.
    for row, v in enumerate(col.tolist()):
        if (
            isinstance(v, float)
            and math.isnan(v)
            and (spec.type in ("double", "float") or not spec.required)
        ):
            continue  # a missing value: _check_present decides whether the column takes one
        if not ok(v):
            raise InvalidInput(
                f"column {spec.name!r} expects {spec.type} values; got {v!r} "
                f"({type(v).__name__}) in row {row}"
            )


def _enforce_tensor(data: Any, spec: TensorSpec) -> Any:
    import numpy as np

    target = np.dtype(spec.dtype)
    try:
        array = np.asarray(data.to_numpy() if hasattr(data, "to_numpy") else data)
    except ValueError:
        array = np.asarray([], dtype=object)
    numeric = array.dtype.kind in "biuf"
    lossy = array.dtype.kind == "f" and target.kind in "iu" and not np.all(np.mod(array, 1) == 0)
    if (target.kind in "biuf" and not numeric) or lossy:
        raise InvalidInput(
            f"the model expects an array of {spec.dtype}; got values of type {array.dtype}"
        )
    array = array.astype(target)
    if array.ndim == len(spec.shape) - 1 and len(spec.shape) > 1:
        array = array.reshape(1, *array.shape)
    shape_ok = array.ndim == len(spec.shape) and all(
        want in (-1, got) for want, got in zip(spec.shape, array.shape, strict=True)
    )
    if not shape_ok:
        raise InvalidInput(
            f"the model expects an array of shape {tuple(spec.shape)}; got {array.shape}"
        )
    if array.shape and array.shape[0] == 0:
        raise InvalidInput("the input has no rows")
    if array.dtype.kind == "f" and array.size:
        bad = np.argwhere(np.isinf(array))
        if len(bad):
            where = tuple(int(i) for i in bad[0])
            raise InvalidInput(
                f"the model expects finite {spec.dtype} values; got "
                f"{'-' if array[where] < 0 else ''}Infinity at "
                f"row {where[0]}" + (f", position {where[1:]}" if len(where) > 1 else ""),
                hint="Send finite numbers (1e999 and Infinity read as infinite).",
            )
    return array
