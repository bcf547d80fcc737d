"""scikit-learn support: ``mt.sklearn.autolog()``, ``log_model``, ``save_model``, ``load_model``."""

from __future__ import annotations

import os
from typing import Any

from mltrail.models.api import ModelInfo, load_native
from mltrail.models.api import log_model as _log_model
from mltrail.models.api import save_model as _save_model
from mltrail.models.mlmodel import ModelMeta

# Bound after the submodule import, so ``mltrail.sklearn.autolog`` stays the function (the
# submodule imports nothing heavy at load).
from mltrail.sklearn.autolog import autolog


def log_model(model: Any, name: str = "model", **options: Any) -> ModelInfo:
    """Log a scikit-learn model as an artifact folder of the active run (see ``mt.log_model``)."""
    return _log_model(model, name, flavor="sklearn", **options)


def save_model(model: Any, path: str | os.PathLike[str], **options: Any) -> ModelMeta:
    """Save a scikit-learn model folder at ``path`` (see ``mt.save_model``)."""
    return _save_model(model, path, flavor="sklearn", **options)


def load_model(model_uri: str | os.PathLike[str]) -> Any:
    """Load the scikit-learn estimator itself from a model URI or folder."""
    return load_native(model_uri, "sklearn")


__all__ = ["autolog", "load_model", "log_model", "save_model"]
