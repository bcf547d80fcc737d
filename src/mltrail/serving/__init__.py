"""Serving models: the scoring server (``create_app``) and batch prediction of files.

The request shapes are MLflow's, so clients written for ``mlflow models serve`` work unchanged:
``application/json`` with one of ``dataframe_split``, ``dataframe_records``, ``instances`` or
``inputs``, or ``text/csv`` with a header row. FastAPI, uvicorn and pandas are imported only when a
server is created or a file is predicted: ``import mltrail.serving`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mltrail.serving.app import create_app
    from mltrail.serving.batch import predict_file

__all__ = ["create_app", "predict_file"]

_LAZY = {"create_app": "mltrail.serving.app", "predict_file": "mltrail.serving.batch"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mltrail.serving' has no attribute {name!r}")
