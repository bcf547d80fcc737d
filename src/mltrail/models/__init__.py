"""Models: the MLmodel folder format, flavors, signatures, and save / log / load.

``import mltrail.models`` stays light: numpy, pandas and the flavor libraries load when a model is
saved or loaded.
"""

from mltrail.models.api import (
    ModelInfo,
    PyFuncModel,
    fetch_model,
    get_model_info,
    load_model,
    load_native,
    log_model,
    register_model,
    save_model,
)
from mltrail.models.mlmodel import ModelFormatError, ModelMeta, read_meta
from mltrail.models.signature import ColSpec, Schema, Signature, TensorSpec, infer_signature

__all__ = [
    "ColSpec",
    "ModelFormatError",
    "ModelInfo",
    "ModelMeta",
    "PyFuncModel",
    "Schema",
    "Signature",
    "TensorSpec",
    "fetch_model",
    "get_model_info",
    "infer_signature",
    "load_model",
    "load_native",
    "log_model",
    "read_meta",
    "register_model",
    "save_model",
]
