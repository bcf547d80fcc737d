"""Models saved by an MLflow flavor mltrail has no module of its own for, loaded through mlflow.

MLflow's own ``python_function`` models (a ``PythonModel`` subclass), and flavors such as
``mlflow.xgboost``, pickle classes that live in the ``mlflow`` package, so loading them needs
``mlflow`` installed: this module hands the folder to ``mlflow.pyfunc.load_model``. mltrail never
saves in this flavor; scikit-learn models logged by MLflow load natively (see ``sklearn``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mltrail.errors import InvalidInput

NAME = "mlflow"


def accepts(model: Any) -> bool:
    """Never: mltrail saves models in its own flavors."""
    return False


def packages() -> list[str]:
    """Distributions a loaded model needs."""
    return ["mlflow"]


def save(model: Any, folder: Path, **options: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Refuse: this flavor only loads what MLflow saved."""
    raise InvalidInput("mltrail does not save models in MLflow's own flavors")


def load(folder: Path, conf: dict[str, Any]) -> Any:
    """Load the folder with ``mlflow.pyfunc.load_model``."""
    try:
        import mlflow.pyfunc
    except ImportError:
        raise InvalidInput(
            f"this model was saved by MLflow ({conf.get('loader_module')}); loading it needs the "
            "mlflow package, which is not installed",
            hint="pip install mlflow (scikit-learn models logged by MLflow load without it).",
        ) from None
    return mlflow.pyfunc.load_model(str(folder))


def predictor(native: Any, pyfunc_conf: dict[str, Any]) -> Any:
    """The loaded model's ``predict``."""
    return native.predict
