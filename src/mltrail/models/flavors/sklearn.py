"""The scikit-learn flavor: estimators, pipelines and fitted search CVs, pickled."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from mltrail.errors import InvalidInput
from mltrail.models.flavors import _pickle

NAME = "sklearn"
MODEL_FILE = "model.pkl"
PREDICT_FNS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform")


def accepts(model: Any) -> bool:
    """True for scikit-learn estimators (anything deriving from BaseEstimator)."""
    try:
        from sklearn.base import BaseEstimator
    except ImportError:
        return False
    return isinstance(model, BaseEstimator)


def packages() -> list[str]:
    """Distributions a loaded model needs."""
    return ["scikit-learn", "numpy", "scipy", "pandas", "cloudpickle"]


def save(
    model: Any,
    folder: Path,
    *,
    serialization_format: str | None = None,
    predict_fn: str = "predict",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pickle ``model`` into ``folder``; return (sklearn settings, python_function settings)."""
    import sklearn

    if predict_fn not in PREDICT_FNS or not callable(getattr(model, predict_fn, None)):
        raise InvalidInput(
            f"predict_fn {predict_fn!r} is not a method of this {type(model).__name__}",
            hint=f"Use one of: {', '.join(f for f in PREDICT_FNS if hasattr(model, f))}.",
        )
    fmt = serialization_format or _pickle.default_format()
    _pickle.dump(model, folder / MODEL_FILE, fmt)
    conf = {
        "pickled_model": MODEL_FILE,
        "serialization_format": fmt,
        "sklearn_version": sklearn.__version__,
        "code": None,
    }
    pyfunc = {"loader_module": __name__, "model_path": MODEL_FILE, "predict_fn": predict_fn}
    return conf, pyfunc


def load(folder: Path, conf: dict[str, Any]) -> Any:
    """Unpickle the estimator; warn when the installed scikit-learn differs from the saving one."""
    try:
        import sklearn
    except ImportError:
        raise InvalidInput(
            "this model needs scikit-learn, which is not installed",
            hint="pip install 'mltrail[sklearn]'",
        ) from None
    saved = conf.get("sklearn_version")
    if saved and saved != sklearn.__version__:
        warnings.warn(
            f"the model was saved with scikit-learn {saved}; {sklearn.__version__} is installed, "
            "and predictions may differ",
            UserWarning,
            stacklevel=3,
        )
    path = folder / conf.get("pickled_model", MODEL_FILE)
    if conf.get("serialization_format") == "skops":
        return _load_skops(path, conf.get("skops_trusted_types"))
    return _pickle.load(path, conf.get("serialization_format"))


def _load_skops(path: Path, trusted: list[str] | None) -> Any:
    """A model MLflow saved with skops (its default): only the types trusted when it was saved."""
    try:
        import skops.io
        from skops.io.exceptions import UntrustedTypesFoundException
    except ImportError:
        raise InvalidInput(
            f"{path.name} is saved in the skops format, which needs the skops package",
            hint="pip install skops",
        ) from None
    try:
        return skops.io.load(path, trusted=list(trusted or []))
    except UntrustedTypesFoundException as e:
        raise InvalidInput(
            f"refusing to load {path}: it holds types its MLmodel does not trust ({e})",
            hint="Log the model again with skops_trusted_types listing them, or with "
            "serialization_format='cloudpickle'.",
        ) from None
    except FileNotFoundError:
        raise InvalidInput(f"the model file {path.name} is missing from {path.parent}") from None
    except Exception as e:
        raise InvalidInput(f"cannot load {path}: {type(e).__name__}: {e}") from None


def predictor(native: Any, pyfunc_conf: dict[str, Any]) -> Any:
    """The bound method ``predict`` runs (``predict`` unless the model was saved otherwise)."""
    name = pyfunc_conf.get("predict_fn", "predict")
    if name not in PREDICT_FNS:
        raise InvalidInput(f"the model's predict_fn {name!r} is not one mltrail runs")
    return getattr(native, name)


def _load_pyfunc(path: str) -> Any:
    # MLflow's pyfunc loader calls this when it reads a folder mltrail saved: with the folder
    # itself (its own loaders look for a "data" key we do not write), or with the model file.
    where = Path(path)
    if where.is_dir():
        from mltrail.models.mlmodel import read_meta

        return load(where, read_meta(where).flavors.get(NAME, {}))
    return _pickle.load(where, "cloudpickle")
