"""The generic "python function" flavor: any object with a ``predict(model_input)`` method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mltrail.models.flavors import _pickle

NAME = "python_function"
MODEL_FILE = "python_model.pkl"


def accepts(model: Any) -> bool:
    """True for any object with a callable ``predict``."""
    return callable(getattr(model, "predict", None))


def packages() -> list[str]:
    """Distributions a loaded model needs (the rest is up to the model's author)."""
    return ["cloudpickle", "numpy", "pandas"]


def save(
    model: Any, folder: Path, *, serialization_format: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pickle the object; it is its own python_function flavor."""
    fmt = serialization_format or _pickle.default_format()
    _pickle.dump(model, folder / MODEL_FILE, fmt)
    pyfunc = {"loader_module": __name__, "python_model": MODEL_FILE, "serialization_format": fmt}
    return pyfunc, pyfunc


def load(folder: Path, conf: dict[str, Any]) -> Any:
    """Unpickle the object."""
    return _pickle.load(
        folder / conf.get("python_model", MODEL_FILE), conf.get("serialization_format")
    )


def predictor(native: Any, pyfunc_conf: dict[str, Any]) -> Any:
    """The object's ``predict``."""
    return native.predict


def _load_pyfunc(path: str) -> Any:
    # MLflow's pyfunc loader calls this when it reads a folder mltrail saved: with the folder
    # itself (its own loaders look for a "data" key we do not write), or with the model file.
    where = Path(path)
    if where.is_dir():
        from mltrail.models.mlmodel import read_meta

        return load(where, read_meta(where).flavors.get(NAME, {}))
    return _pickle.load(where, "cloudpickle")
