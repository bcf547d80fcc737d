"""Request bodies → model input, checked against the model's signature exactly once.

The shapes are those of MLflow's scoring protocol: ``application/json`` holding exactly one of
``dataframe_split`` (``{"columns", "data"[, "index"]}``), ``dataframe_records`` (a list of row
objects), ``instances`` or ``inputs`` (columns, records or arrays), plus an optional ``params``;
or ``text/csv`` with a header row. The server and ``mltrail models predict`` both read them here.

The common case, a block of numbers for a model whose columns are all floating point, skips
pandas' per-column checks: the numbers go into one float array and one DataFrame, which is what
the full check would have produced. Anything else takes the full check (``PyFuncModel.prepare``),
whose messages name the offending column, value and row.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidInput, MltrailError

if TYPE_CHECKING:
    from mltrail.models import PyFuncModel

JSON = "application/json"
CSV = "text/csv"
#: Content types the server accepts, in the order error messages list them.
CONTENT_TYPES = (JSON, CSV)
#: The keys of a JSON request; exactly one must be present.
JSON_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
PARAMS_KEY = "params"

_SHAPES_HINT = (
    'Send {"dataframe_split": {"columns": [...], "data": [[...], ...]}}, '
    '{"dataframe_records": [{...}, ...]}, {"instances": ...} or {"inputs": ...}.'
)
_MAX_SHOWN = 5

try:  # orjson is much faster on large bodies; it is optional.
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None


class UnsupportedContentType(InvalidInput):
    """A request whose Content-Type is not one the server reads (HTTP 415)."""

    code = "UNSUPPORTED_MEDIA_TYPE"


def content_kind(header: str | None) -> str:
    """Check a Content-Type header; return ``application/json`` or ``text/csv``.

    The only parameter accepted is ``charset=utf-8``, as in MLflow's scoring server.
    """
    accepted = f"Send Content-Type: {' or '.join(CONTENT_TYPES)}."
    if not header or not header.strip():
        raise UnsupportedContentType("the request has no Content-Type header", hint=accepted)
    media, _, rest = header.partition(";")
    media = media.strip().lower()
    if media not in CONTENT_TYPES:
        raise UnsupportedContentType(f"unsupported content type {media!r}", hint=accepted)
    for param in rest.split(";"):
        param = param.strip()
        if not param:
            continue
        key, _, value = param.partition("=")
        if key.strip().lower() != "charset" or value.strip().strip('"').lower() != "utf-8":
            raise UnsupportedContentType(
                f"unsupported content type parameter {param!r}",
                hint="The only parameter accepted is charset=utf-8.",
            )
    return media


def loads(body: bytes | str) -> Any:
    """Parse JSON with orjson when installed, else the standard library.

    Python's parser also reads ``NaN`` and ``Infinity``, which MLflow clients may send; orjson
    refuses them, so a body it rejects is parsed again by the standard library.
    """
    if _orjson is not None:
        try:
            return _orjson.loads(body)
        except _orjson.JSONDecodeError:
            pass
    return json.loads(body)


# -- JSON requests ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Payload:
    """A parsed request: which shape it used, its data, and its params."""

    key: str
    data: Any
    params: dict[str, Any] | None = None
    #: True when no JSON ``true``/``false`` occurs in the body, so a numeric array made from the
    #: data holds no booleans in disguise (numpy turns ``[1.5, true]`` into ``[1.5, 1.0]``).
    no_booleans: bool = False


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _listed(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_MAX_SHOWN])
    return shown + (f" and {len(names) - _MAX_SHOWN} more" if len(names) > _MAX_SHOWN else "")


def parse_json(body: bytes | str) -> Payload:
    """Parse a JSON request; raise InvalidInput on an empty or malformed body or wrong keys."""
    if not body.strip():
        raise InvalidInput("the request body is empty", hint=_SHAPES_HINT)
    try:
        doc = loads(body)
    except (ValueError, RecursionError) as e:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors; their text says where.
        raise InvalidInput(f"the body is not valid JSON: {e}", hint=_SHAPES_HINT) from None
    if not isinstance(doc, dict):
        raise InvalidInput(
            f"expected a JSON object with one of {', '.join(JSON_KEYS)}; got a JSON "
            f"{_json_type(doc)}",
            hint=_SHAPES_HINT,
        )
    keys = [k for k in JSON_KEYS if k in doc]
    unknown = [k for k in doc if k not in JSON_KEYS and k != PARAMS_KEY]
    if unknown:
        raise InvalidInput(
            f"unexpected key(s) {_listed(unknown)} in the request", hint=_SHAPES_HINT
        )
    if not keys:
        raise InvalidInput(
            f"the request has none of the keys {', '.join(JSON_KEYS)}", hint=_SHAPES_HINT
        )
    if len(keys) > 1:
        raise InvalidInput(
            f"the request has {' and '.join(keys)}; send exactly one of them", hint=_SHAPES_HINT
        )
    params = doc.get(PARAMS_KEY)
    if params is not None and not isinstance(params, dict):
        raise InvalidInput(f"params must be a JSON object; got a JSON {_json_type(params)}")
    raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
    return Payload(keys[0], doc[keys[0]], params, b"true" not in raw and b"false" not in raw)


def to_data(payload: Payload) -> Any:
    """The payload as a DataFrame (split, records) or as sent (instances, inputs)."""
    import pandas as pd

    key, data = payload.key, payload.data
    if key == "dataframe_split":
        return _split_frame(data)
    if key == "dataframe_records":
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise InvalidInput(
                'dataframe_records must be a list of objects, one per row (e.g. [{"a": 1, "b": 2}])'
            )
        return pd.DataFrame.from_records(data) if data else pd.DataFrame()
    # instances / inputs: a dict of columns, a list of records, or an array (nested lists).
    if data is None:
        raise InvalidInput(f"{key} is null; send the rows or columns to predict on")
    return data


def _split_frame(split: Any) -> Any:
    import pandas as pd

    if not isinstance(split, dict) or "data" not in split:
        raise InvalidInput(
            'dataframe_split must be an object with "columns" and "data" '
            '(e.g. {"columns": ["a", "b"], "data": [[1, 2]]})'
        )
    columns, data, index = split.get("columns"), split["data"], split.get("index")
    if not isinstance(data, list):
        raise InvalidInput(
            f"dataframe_split.data must be a list of rows; got a JSON {_json_type(data)}"
        )
    if columns is not None:
        if not isinstance(columns, list) or not all(isinstance(c, str | int) for c in columns):
            raise InvalidInput("dataframe_split.columns must be a list of column names")
        for i, row in enumerate(data):
            if not isinstance(row, list) or len(row) != len(columns):
                got = f"{len(row)} values" if isinstance(row, list) else f"a {_json_type(row)}"
                raise InvalidInput(
                    f"row {i} of dataframe_split.data has {got}; expected a list of "
                    f"{len(columns)} (one per column)"
                )
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise InvalidInput("dataframe_split.index must be a list with one label per row of data")
    try:
        return pd.DataFrame(data, columns=columns, index=index)
    except (ValueError, TypeError) as e:
        raise InvalidInput(f"cannot read dataframe_split: {e}") from None


# -- CSV -------------------------------------------------------------------------------------
def read_csv(body: bytes | io.IOBase) -> Any:
    """Read a CSV body (header row first) into a DataFrame."""
    import pandas as pd

    if isinstance(body, bytes | bytearray):
        if not body.strip():
            raise InvalidInput("the request body is empty", hint="Send a header row, then rows.")
        body = io.BytesIO(body)
    try:
        return pd.read_csv(body)
    except pd.errors.EmptyDataError:
        raise InvalidInput("the CSV is empty", hint="Send a header row, then rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise InvalidInput(f"cannot read the CSV: {str(e).strip()}") from None


def check_header(frame: Any, model: PyFuncModel) -> None:
    """Refuse a CSV whose first line holds values rather than column names."""
    signature = model.signature
    if signature is None or not signature.inputs.columns:
        return
    names = [str(c) for c in frame.columns]
    wanted = set(signature.inputs.names)
    if any(n in wanted for n in names) or not all(_numeric(n) for n in names):
        return
    raise InvalidInput(
        f"the CSV has no header row: its first line holds values ({_listed(names)})",
        hint=f"Start it with a line of column names: {','.join(signature.inputs.names)}",
    )


def csv_numbers(frame: Any, model: PyFuncModel) -> Any:
    """Name the culprit of a numeric CSV column that pandas read as text.

    One stray word makes pandas read a whole column as strings; the signature check would then
    point at its first (perfectly good) value. Here the column's numbers are parsed, and the
    first value that is not one is reported, with its row.
    """
    import pandas as pd
    from pandas.api import types as pt

    signature = model.signature
    if signature is None or not signature.inputs.columns:
        return frame
    numeric = {"double", "float", "long", "integer"}
    for spec in signature.inputs.columns:
        if spec.type not in numeric or spec.name not in frame.columns:
            continue
        col = frame[spec.name]
        if not pt.is_object_dtype(col.dtype) and not pt.is_string_dtype(col.dtype):
            continue
        values = pd.to_numeric(col, errors="coerce")
        bad = (values.isna() & col.notna()).to_numpy().nonzero()[0]
        if len(bad):
            row = int(bad[0])
            value = col.iloc[row]
            raise InvalidInput(
                f"column {spec.name!r} expects {spec.type} values; got {value!r} "
                f"({type(value).__name__}) in row {row}"
            )
        frame = frame.assign(**{spec.name: values})
    return frame


def _numeric(text: str) -> bool:
    # pandas renames a repeated header value "1.5" to "1.5.1"; that is still a number.
    for candidate in (text, text.rsplit(".", 1)[0]):
        try:
            float(candidate)
        except ValueError:
            continue
        return True
    return False


# -- scoring ---------------------------------------------------------------------------------
class Scorer:
    """Prepares parsed requests for one model and runs its predict.

    ``prepare`` checks input against the signature (raising InvalidInput naming the column);
    ``predict`` runs the model on prepared input without checking it again.
    """

    def __init__(self, model: PyFuncModel) -> None:
        import numpy as np
        import pandas as pd

        self.model = model
        self._names: list[str] | None = None
        self._index: Any = None
        self._dtype: Any = None
        schema = model.signature.inputs if model.signature else None
        if schema is not None and schema.columns:
            types = {c.type for c in schema.columns}
            if types <= {"double"} or types <= {"float"}:
                self._names = schema.names
                self._index = pd.Index(self._names)
                self._dtype = np.float64 if types == {"double"} else np.float32
        self._positions = {n: i for i, n in enumerate(self._names or ())}

    def prepare(self, payload: Payload) -> Any:
        """The model input for a parsed JSON request."""
        fast = self._fast(payload) if self._names is not None else None
        if fast is not None:
            return fast
        return self.prepare_data(to_data(payload), what=payload.key)

    def prepare_data(self, data: Any, what: str = "the input") -> Any:
        """Check and convert a DataFrame, array, dict of columns or list of records."""
        try:
            return self.model.prepare(data)
        except MltrailError:
            raise
        except (ValueError, TypeError) as e:
            # numpy and pandas refuse ragged or mixed nesting before the signature check runs.
            raise InvalidInput(f"cannot read {what}: {e}") from None

    def predict(self, prepared: Any) -> Any:
        """Run the model on prepared input (``prepare`` already checked it: not model.predict)."""
        return self.model.predict_prepared(prepared)

    def _fast(self, payload: Payload) -> Any:
        # A block of plain numbers for an all-float model: one array, one DataFrame. Returns
        # None whenever the full check must decide (it also writes the error messages).
        import numpy as np
        import pandas as pd

        if not payload.no_booleans:
            return None
        data = payload.data
        if payload.key == "dataframe_split":
            if not isinstance(data, dict) or set(data) - {"columns", "data", "index"}:
                return None
            columns, data = data.get("columns"), data.get("data")
            if columns != self._names:
                order = self._order(columns)
                if order is None:
                    return None
            else:
                order = None
        elif payload.key in ("inputs", "instances") and isinstance(data, list):
            order = None
        else:
            return None
        if not isinstance(data, list) or not data:
            return None
        try:
            array = np.array(data)
        except (ValueError, TypeError):
            return None
        if array.dtype.kind not in "if":
            return None
        if array.ndim == 1 and payload.key != "dataframe_split":
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[1] != len(self._positions):
            return None
        array = array.astype(self._dtype, copy=False)
        if not np.isfinite(array).all():
            return None  # NaN or infinity: the full check decides, and names column and row
        if order is not None:
            array = array[:, order]
        return pd.DataFrame(array, columns=self._index, copy=False)

    def _order(self, columns: Any) -> list[int] | None:
        # The same names in another order: where each of the model's columns is in the request.
        if not isinstance(columns, list) or len(columns) != len(self._positions):
            return None
        where = {c: i for i, c in enumerate(columns) if isinstance(c, str)}
        if len(where) != len(columns) or set(where) != set(self._positions):
            return None
        return [where[n] for n in self._names or ()]


__all__ = [
    "CONTENT_TYPES",
    "CSV",
    "JSON",
    "JSON_KEYS",
    "Payload",
    "Scorer",
    "UnsupportedContentType",
    "check_header",
    "content_kind",
    "csv_numbers",
    "loads",
    "parse_json",
    "read_csv",
    "to_data",
]
