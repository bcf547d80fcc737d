"""Pickle files of model flavors: cloudpickle when installed (it saves classes defined in
``__main__`` by value), the standard library otherwise.

Loading a pickle runs code from the file. mltrail only loads a registered or logged model after
checking every file against the hash recorded when it was stored; a folder on disk is trusted.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from mltrail.errors import InvalidInput

FORMATS = ("cloudpickle", "pickle")


def default_format() -> str:
    """cloudpickle when it is installed, else pickle."""
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        return "pickle"
    return "cloudpickle"


def dump(obj: Any, path: Path, serialization_format: str) -> None:
    """Write ``obj`` to ``path`` in ``serialization_format``."""
    if serialization_format not in FORMATS:
        raise InvalidInput(
            f"unknown serialization_format {serialization_format!r}",
            hint=f"Use one of: {', '.join(FORMATS)}.",
        )
    module: Any = pickle
    if serialization_format == "cloudpickle":
        try:
            import cloudpickle as module
        except ImportError:
            raise InvalidInput(
                "serialization_format='cloudpickle' needs the cloudpickle package",
                hint="pip install cloudpickle, or pass serialization_format='pickle'.",
            ) from None
    try:
        with open(path, "wb") as f:
            module.dump(obj, f, protocol=pickle.DEFAULT_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise InvalidInput(
            f"cannot pickle the {type(obj).__name__} model: {e}",
            hint="Models defined in __main__ need cloudpickle (pip install cloudpickle).",
        ) from None


def load(path: Path, serialization_format: str | None) -> Any:
    """Read a pickled model; a damaged or foreign file raises InvalidInput."""
    if serialization_format not in (None, *FORMATS):
        raise InvalidInput(
            f"the model is stored as {serialization_format!r}, which mltrail cannot load",
            hint="Save it again with serialization_format='cloudpickle'.",
        )
    # cloudpickle writes standard pickle streams; pickle.load reads them (by-value classes
    # import cloudpickle themselves).
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        raise InvalidInput(f"the model file {path.name} is missing from {path.parent}") from None
    except ModuleNotFoundError as e:
        raise InvalidInput(
            f"loading {path.name} needs the module {e.name!r}, which is not installed",
            hint=f"Install the packages in {path.parent / 'requirements.txt'}.",
        ) from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as e:
        raise InvalidInput(f"cannot load {path}: {type(e).__name__}: {e}") from None
