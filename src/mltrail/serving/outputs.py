"""Model output → JSON: ``{"predictions": [...]}``, numpy arrays as lists, DataFrames as records.

NaN and infinities, which JSON cannot represent, become ``null``; numpy scalars, timestamps and
bytes (base64) are converted on the way.
"""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

try:  # optional, faster
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None


def jsonable(output: Any) -> Any:
    """Plain lists, dicts and scalars for a prediction (ndarray, Series, DataFrame, list...)."""
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        return json.loads(output.to_json(orient="records", date_format="iso"))
    if isinstance(output, pd.Series):
        output = output.to_numpy()
    if isinstance(output, np.ndarray):
        kind = output.dtype.kind
        if kind == "f" and not np.isfinite(output).all():
            cleaned = output.astype(object)
            cleaned[~np.isfinite(output)] = None
            return cleaned.tolist()
        if kind == "M":
            return np.datetime_as_string(output).tolist()
        return output.tolist()
    if isinstance(output, np.generic):
        return output.item()
    return output


def _default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return jsonable(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot encode a {type(value).__name__} as JSON")


def dumps(doc: Any) -> bytes:
    """Compact JSON bytes; orjson when installed."""
    if _orjson is not None:
        return _orjson.dumps(doc, default=_default)
    return json.dumps(doc, default=_default, separators=(",", ":")).encode()


def predictions_json(output: Any) -> bytes:
    """The response body for a model's output."""
    return dumps({"predictions": jsonable(output)})


def predictions_frame(output: Any) -> Any:
    """A model's output as a DataFrame for a CSV: one ``prediction`` column, ``prediction_0``…
    for a 2-D array, or the model's own columns for a DataFrame."""
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        return output
    if isinstance(output, pd.Series):
        output = output.to_numpy()
    array = np.asarray(output)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim == 1:
        return pd.DataFrame({"prediction": array})
    flat = array.reshape(array.shape[0], -1)
    columns = [f"prediction_{i}" for i in range(flat.shape[1])]
    return pd.DataFrame(flat, columns=columns)


__all__ = ["dumps", "jsonable", "predictions_frame", "predictions_json"]
