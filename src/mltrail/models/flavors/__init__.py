"""Flavors: how one library's models are saved and loaded, one module per library.

A flavor module has ``NAME``, ``accepts(model)``, ``save(model, folder, **options)`` returning
its MLmodel settings, ``packages()`` (the distributions to pin in requirements.txt), ``load(folder,
conf)`` returning the library's own object, and ``predictor(native, conf)`` returning something
with ``predict(input)``. Adding XGBoost, LightGBM or PyTorch is one module and one line below.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from mltrail.errors import InvalidInput

#: Flavor name → module, in the order ``save_model`` tries them (the generic one last).
FLAVOR_MODULES: dict[str, str] = {
    "sklearn": "mltrail.models.flavors.sklearn",
    "python_function": "mltrail.models.flavors.pyfunc",
    "mlflow": "mltrail.models.flavors.mlflow_pyfunc",
}

#: ``python_function.loader_module`` values mltrail can load, and the flavor that loads them.
#: MLflow's own scikit-learn folders are read by our sklearn flavor.
LOADERS: dict[str, str] = {
    "mltrail.models.flavors.sklearn": "sklearn",
    "mlflow.sklearn": "sklearn",
    "mltrail.models.flavors.pyfunc": "python_function",
}


def flavor(name: str) -> ModuleType:
    """Return the module of flavor ``name``."""
    try:
        return importlib.import_module(FLAVOR_MODULES[name])
    except KeyError:
        raise InvalidInput(
            f"unknown model flavor {name!r}",
            hint=f"Flavors mltrail knows: {', '.join(FLAVOR_MODULES)}.",
        ) from None


def flavor_for(model: Any) -> ModuleType:
    """Pick the flavor that saves ``model``: the most specific one that accepts it."""
    for name in FLAVOR_MODULES:
        module = flavor(name)
        if module.accepts(model):
            return module
    raise InvalidInput(
        f"cannot save a {type(model).__module__}.{type(model).__qualname__}: no flavor accepts it",
        hint="Models need a predict() method; scikit-learn estimators are saved natively.",
    )


def loader_for(pyfunc_conf: dict[str, Any], flavors: dict[str, Any]) -> ModuleType:
    """Return the flavor module that loads a model for predict, from its MLmodel settings."""
    loader = pyfunc_conf.get("loader_module")
    if loader is None:
        raise InvalidInput(
            "the model has no python_function flavor, so nothing knows how to run predict on it",
            hint=f"Flavors in the model: {', '.join(flavors)}.",
        )
    name = LOADERS.get(str(loader))
    if name is None and str(loader).startswith("mlflow."):
        # Another of MLflow's flavors: mlflow itself loads it.
        return flavor("mlflow")
    if name is None:
        raise InvalidInput(
            f"the model is loaded by {loader!r}, which mltrail does not support",
            hint=f"mltrail loads: {', '.join(sorted(set(LOADERS.values())))} models.",
        )
    if name not in ("python_function", "mlflow") and name not in flavors:
        raise InvalidInput(f"the model names loader {loader!r} but has no {name!r} flavor")
    return flavor(name)
