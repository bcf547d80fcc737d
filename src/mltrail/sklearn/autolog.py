"""scikit-learn autologging: every outermost ``fit`` becomes a tracked run.

``autolog()`` replaces ``fit`` (and ``fit_transform`` / ``fit_predict`` where a scikit-learn class
implements them itself) on the classes that define them, for every estimator
``sklearn.utils.all_estimators()`` lists plus Pipeline and the search CVs. The originals are kept
and ``autolog(disable=True)`` puts them back exactly.

Only the outermost fit logs. A per-thread depth counter marks "inside a fit"; the fits a Pipeline,
a search CV or an ensemble makes of its parts run at depth > 0 and pass straight through. Fits
that scikit-learn dispatches through its joblib helper (``sklearn.utils.parallel``: search CV and
cross-validation folds, ensemble members) also run at depth > 0, in whichever thread executes
them, so ``n_jobs`` with the threading backend and ``cross_val_score`` create no runs. Worker
processes (loky) import scikit-learn afresh, unpatched.

Logging never breaks the user's fit: each step is guarded, and one warning per fit says what
could not be logged. The fit's own result, or its own exception, comes back unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import numbers
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltrail.errors import InvalidInput

#: Tag set on every run (and child run) autologging writes to.
TAG_AUTOLOGGING = "mltrail.autologging"
FLAVOR = "sklearn"
#: Prefix of the metrics computed on the data passed to ``fit``.
TRAINING_PREFIX = "training_"
INPUT_EXAMPLE_ROWS = 5
CV_RESULTS_FILE = "cv_results.csv"

_METHODS = ("fit", "fit_transform", "fit_predict")
# Methods a model can be served with, in order of preference.
_PREDICT_FNS = ("predict", "transform")


class AutologWarning(UserWarning):
    """Something autologging could not record; the fit itself was not affected."""


@dataclass(frozen=True)
class _Options:
    log_models: bool
    log_input_examples: bool
    log_model_signatures: bool
    max_tuning_runs: int | None
    registered_model_name: str | None
    silent: bool
    exclusive: bool


_options: _Options | None = None
# (class that defines the attribute, attribute name) -> the original object in its __dict__.
_originals: dict[tuple[type, str], Any] = {}
_lock = threading.Lock()
_local = threading.local()


def autolog(
    disable: bool = False,
    *,
    log_models: bool = True,
    log_input_examples: bool = True,
    log_model_signatures: bool = True,
    max_tuning_runs: int | None = 5,
    registered_model_name: str | None = None,
    silent: bool = False,
    exclusive: bool = False,
) -> None:
    """Log params, training metrics, tags and the model of every outermost scikit-learn fit.

    With an active run, a fit logs into it and leaves it open (unless ``exclusive``: then it
    logs nothing); otherwise it starts a run named after the estimator class and ends it when
    fit returns (FAILED if fit raised). Search CVs also log ``best_<param>`` params, the
    ``best_cv_score`` metric, ``cv_results.csv``, the ``best_estimator`` model and up to
    ``max_tuning_runs`` child runs (None: all) for the best-ranked parameter sets.
    ``silent`` suppresses the warning about what could not be logged. Calling it again changes
    the options; ``disable=True`` restores scikit-learn's own methods.
    """
    global _options
    with _lock:
        if disable:
            _unpatch_all()
            _options = None
            return
        if max_tuning_runs is not None:
            if (
                not isinstance(max_tuning_runs, numbers.Integral)
                or isinstance(max_tuning_runs, bool)
                or max_tuning_runs < 0
            ):
                raise InvalidInput(
                    f"max_tuning_runs must be None or an integer >= 0, got {max_tuning_runs!r}"
                )
            max_tuning_runs = int(max_tuning_runs)
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise InvalidInput(
                "scikit-learn autologging needs scikit-learn, which is not installed",
                hint="pip install 'mltrail[sklearn]'",
            ) from None
        _options = _Options(
            log_models=bool(log_models),
            log_input_examples=bool(log_input_examples),
            log_model_signatures=bool(log_model_signatures),
            max_tuning_runs=max_tuning_runs,
            registered_model_name=registered_model_name,
            silent=bool(silent),
            exclusive=bool(exclusive),
        )
        if not _originals:
            try:
                _patch_all()
            except BaseException:
                _unpatch_all()
                _options = None
                raise


def is_enabled() -> bool:
    """True while autologging is on."""
    return _options is not None


# -- patching --------------------------------------------------------------------------------
def _estimator_classes() -> list[type]:
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.utils import all_estimators

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classes = [cls for _, cls in all_estimators()]
    return [*classes, Pipeline, FeatureUnion, GridSearchCV, RandomizedSearchCV]


def _patch_points(classes: list[type]) -> list[tuple[type, str]]:
    """(defining class, method) for every method to wrap, each once.

    A method is wrapped where it is defined, so RandomForestClassifier's inherited fit is wrapped
    on BaseForest. The generic fit_transform / fit_predict of sklearn.base's mixins call ``fit``,
    which is wrapped already, so they are left alone.
    """
    points: dict[tuple[type, str], None] = {}
    for cls in classes:
        for name in _METHODS:
            owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
            if owner is None or not owner.__module__.startswith("sklearn."):
                continue
            if name != "fit" and owner.__module__ == "sklearn.base":
                continue
            points[(owner, name)] = None
    return list(points)


def _patch_all() -> None:
    for owner, name in _patch_points(_estimator_classes()):
        raw = owner.__dict__[name]
        if inspect.isfunction(raw):
            patched: Any = _wrap_function(raw, name)
        elif hasattr(raw, "__get__") and not isinstance(raw, property | classmethod | staticmethod):
            patched = _PatchedDescriptor(raw, name)  # e.g. Pipeline's available_if methods
        else:
            continue
        _originals[(owner, name)] = raw
        setattr(owner, name, patched)
    try:
        from sklearn.utils.parallel import _FuncWrapper
    except ImportError:  # older scikit-learn: worker threads are not marked
        return
    raw = _FuncWrapper.__dict__["__call__"]
    _originals[(_FuncWrapper, "__call__")] = raw
    _FuncWrapper.__call__ = _wrap_parallel_task(raw)  # type: ignore[method-assign]


def _unpatch_all() -> None:
    for (owner, name), raw in _originals.items():
        setattr(owner, name, raw)
    _originals.clear()


def _depth() -> int:
    return getattr(_local, "depth", 0)


def _wrap_parallel_task(raw: Callable[..., Any]) -> Callable[..., Any]:
    # A task scikit-learn runs through its joblib helper is part of an enclosing operation
    # (a fold, a candidate, an ensemble member): fits inside it never log, in any thread.
    @functools.wraps(raw)
    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        depth = _depth()
        _local.depth = depth + 1
        try:
            return raw(self, *args, **kwargs)
        finally:
            _local.depth = depth

    return __call__


def _wrap_function(raw: Callable[..., Any], name: str) -> Callable[..., Any]:
    @functools.wraps(raw)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        options = _options
        if options is None or _depth():
            return raw(self, *args, **kwargs)
        problems: list[str] = []
        try:
            call = functools.partial(raw, self)
            return _logged_fit(self, name, call, args, kwargs, raw, True, options, problems)
        finally:
            if problems and not options.silent:
                with contextlib.suppress(Exception):  # an error filter must not mask fit's result
                    warnings.warn(_message(self, name, problems), AutologWarning, stacklevel=2)

    return patched


class _PatchedDescriptor:
    """Wraps a descriptor-defined method (scikit-learn's ``available_if``) on access, so
    ``hasattr(est, "fit_predict")`` still answers as the original does."""

    def __init__(self, raw: Any, name: str) -> None:
        self.raw = raw
        self.name = name
        functools.update_wrapper(self, raw)

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        bound = self.raw.__get__(obj, owner)  # raises AttributeError when unavailable
        if obj is None:
            return bound
        fn = getattr(bound, "__func__", bound)
        name = self.name

        @functools.wraps(bound)
        def patched(*args: Any, **kwargs: Any) -> Any:
            options = _options
            if options is None or _depth():
                return bound(*args, **kwargs)
            problems: list[str] = []
            try:
                skip_first = fn is not bound
                return _logged_fit(
                    obj, name, bound, args, kwargs, fn, skip_first, options, problems
                )
            finally:
                if problems and not options.silent:
                    with contextlib.suppress(Exception):
                        warnings.warn(_message(obj, name, problems), AutologWarning, stacklevel=2)

        return patched


def _message(est: Any, method: str, problems: list[str]) -> str:
    return (
        f"mltrail autolog could not record everything for {type(est).__name__}.{method} "
        f"(the fit itself is unaffected): {'; '.join(problems)}"
    )


# -- one logged fit --------------------------------------------------------------------------
def _logged_fit(
    est: Any,
    method: str,
    call: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    fn: Callable[..., Any],
    skip_first: bool,
    options: _Options,
    problems: list[str],
) -> Any:
    _local.depth = 1
    try:
        session = _Session.open(est, options, problems)
        try:
            result = call(*args, **kwargs)
        except BaseException as exc:
            if session is not None:
                session.close(exc, problems)
            raise
        if session is not None:
            try:
                with warnings.catch_warnings():
                    # Metric and signature warnings would be about autologging, not user code.
                    warnings.simplefilter("ignore")
                    session.log_fitted(est, *_fit_inputs(fn, skip_first, args, kwargs), problems)
            except Exception as e:
                problems.append(f"the results of the fit ({_describe(e)})")
            session.close(None, problems)
        return result
    finally:
        _local.depth = 0


@functools.lru_cache(maxsize=1024)
def _arg_names(fn: Callable[..., Any], skip_first: bool) -> tuple[str, ...]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in inspect.signature(fn).parameters.values() if p.kind in kinds]
    return tuple(names[1:] if skip_first else names)


def _fit_inputs(
    fn: Callable[..., Any], skip_first: bool, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, Any, Any]:
    """(X, y, sample_weight) as fit received them, by position or by name."""
    try:
        names = _arg_names(fn, skip_first)
    except (TypeError, ValueError):
        names = ()

    def arg(index: int, name: str) -> Any:
        if index < len(args):
            return args[index]
        return kwargs.get(name)

    x = arg(0, names[0] if names else "X")
    y = arg(1, names[1] if len(names) > 1 else "y")
    if "sample_weight" in names:
        weight = arg(names.index("sample_weight"), "sample_weight")
    else:
        weight = kwargs.get("sample_weight")
    return x, y, weight


class _Session:
    """The run one outermost fit logs to."""

    def __init__(self, client: Any, active: Any, own: bool, options: _Options) -> None:
        self.client = client
        self.active = active
        self.run_id: str = active.run_id
        self.experiment_id: str = active.info.experiment_id
        self.own = own
        self.options = options

    @classmethod
    def open(cls, est: Any, options: _Options, problems: list[str]) -> _Session | None:
        from mltrail.tracking import fluent

        try:
            active = fluent.active_run()
            if active is not None and options.exclusive:
                return None
            tags = _estimator_tags(est)
            client = fluent.get_client()
            if active is None:
                session = cls(
                    client, fluent.start_run(run_name=type(est).__name__, tags=tags), True, options
                )
            else:
                session = cls(client, active, False, options)
                client.set_tags(session.run_id, tags)
        except Exception as e:
            problems.append(f"could not start a run ({_describe(e)})")
            return None
        session.step("params", problems, lambda: client.log_params(session.run_id, _params(est)))
        return session

    def step(self, what: str, problems: list[str], fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as e:
            problems.append(f"{what} ({_describe(e)})")

    def log_fitted(self, est: Any, x: Any, y: Any, weight: Any, problems: list[str]) -> None:
        if y is not None:
            self.step("training metrics", problems, lambda: self._log_metrics(est, x, y, weight))
        search = _is_search_cv(est)
        if search:
            self.step("best params", problems, lambda: self._log_best(est))
            self.step(CV_RESULTS_FILE, problems, lambda: self._log_cv_results(est))
            self.step("tuning child runs", problems, lambda: self._log_child_runs(est))
        if self.options.log_models:
            self.step("model", problems, lambda: self._log_model(est, "model", x, True))
            if search and hasattr(est, "best_estimator_"):
                self.step(
                    "best_estimator model",
                    problems,
                    lambda: self._log_model(est.best_estimator_, "best_estimator", x, False),
                )

    def close(self, exc: BaseException | None, problems: list[str]) -> None:
        """End the run this fit started (FAILED/KILLED if fit raised); leave the user's open."""
        if not self.own:
            return
        from mltrail.tracking import fluent

        def end() -> None:
            if any(r.run_id == self.run_id for r in fluent._run_stack):
                # Ends runs the fit left open inside ours too, as a with-block would.
                self.active.__exit__(type(exc) if exc else None, exc, None)
            else:
                status = "FINISHED" if exc is None else "FAILED"
                if isinstance(exc, KeyboardInterrupt):
                    status = "KILLED"
                self.client.set_terminated(self.run_id, status)

        self.step("end the run", problems, end)

    # -- what is logged ----------------------------------------------------------------------
    def _log_metrics(self, est: Any, x: Any, y: Any, weight: Any) -> None:
        metrics = _training_metrics(est, x, y, weight)
        if metrics:
            self.client.log_metrics(self.run_id, metrics)

    def _log_best(self, cv: Any) -> None:
        if hasattr(cv, "best_params_"):
            self.client.log_params(
                self.run_id, {f"best_{k}": _param_value(v) for k, v in cv.best_params_.items()}
            )
        score = getattr(cv, "best_score_", None)
        if _is_number(score):
            self.client.log_metrics(self.run_id, {"best_cv_score": float(score)})

    def _log_cv_results(self, cv: Any) -> None:
        import pandas as pd

        with tempfile.TemporaryDirectory(prefix="mltrail-autolog-") as tmp:
            path = Path(tmp) / CV_RESULTS_FILE
            pd.DataFrame(cv.cv_results_).to_csv(path, index=False)
            self.client.log_artifact(self.run_id, path)

    def _log_child_runs(self, cv: Any) -> None:
        limit = self.options.max_tuning_runs
        results = cv.cv_results_
        candidates = list(results["params"])
        rank_key = _rank_key(cv, results)
        order = list(range(len(candidates)))
        if rank_key is not None:
            order.sort(key=lambda i: (results[rank_key][i], i))
        if limit is not None:
            order = order[:limit]
        base = getattr(cv, "estimator", None)
        tags = _estimator_tags(base) if base is not None else {TAG_AUTOLOGGING: FLAVOR}
        name = type(base).__name__ if base is not None else type(cv).__name__
        score_keys = [k for k in results if k.startswith(("mean_", "std_", "rank_"))]
        for position, i in enumerate(order, start=1):
            child = self.client.create_run(
                self.experiment_id,
                run_name=f"{name}-{position}",
                tags=tags,
                parent_run_id=self.run_id,
            )
            child_id = child.info.run_id
            self.client.log_params(child_id, {k: _param_value(v) for k, v in candidates[i].items()})
            scores = {k: float(results[k][i]) for k in score_keys if _is_number(results[k][i])}
            if scores:
                self.client.log_metrics(child_id, scores)
            self.client.set_terminated(child_id, "FINISHED")

    def _log_model(self, model: Any, name: str, x: Any, register: bool) -> None:
        from mltrail.models import api

        predict_fn = next((f for f in _PREDICT_FNS if callable(getattr(model, f, None))), None)
        if predict_fn is None:
            return  # nothing a served model could call (e.g. DBSCAN, TSNE)
        options = self.options
        registered = options.registered_model_name if register else None
        example = (
            _input_example(x) if options.log_input_examples or options.log_model_signatures
            else None
        )  # fmt: skip
        common = {"run_id": self.run_id, "client": self.client, "predict_fn": predict_fn}
        if example is None or (options.log_input_examples and options.log_model_signatures):
            api.log_model(model, name, registered_name=registered, input_example=example, **common)
        elif options.log_model_signatures:  # a signature, but no example file
            signature = api.infer_model_signature(example, getattr(model, predict_fn))
            api.log_model(model, name, registered_name=registered, signature=signature, **common)
        else:  # an example file, but no signature
            api.log_model(
                model, name, registered_name=registered, input_example=example, signature=False,
                **common,
            )  # fmt: skip


# -- helpers ---------------------------------------------------------------------------------
def _describe(e: BaseException) -> str:
    text = getattr(e, "message", None) or str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_search_cv(est: Any) -> bool:
    from sklearn.model_selection._search import BaseSearchCV

    return isinstance(est, BaseSearchCV)


def _estimator_tags(est: Any) -> dict[str, str]:
    cls = type(est)
    return {
        "estimator_name": cls.__name__,
        "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
        TAG_AUTOLOGGING: FLAVOR,
    }


class _Name(str):
    """A class or function name that prints without quotes inside a list's repr."""

    def __repr__(self) -> str:
        return str(self)


def _plain(value: Any) -> Any:
    if hasattr(value, "get_params") and hasattr(value, "fit") and not isinstance(value, type):
        return _Name(type(value).__name__)  # a nested estimator
    if inspect.isfunction(value) or inspect.isbuiltin(value) or isinstance(value, type):
        return _Name(getattr(value, "__qualname__", getattr(value, "__name__", repr(value))))
    if isinstance(value, list):
        return [_plain(x) for x in value]
    if isinstance(value, tuple):
        return tuple(_plain(x) for x in value)
    if isinstance(value, dict):
        return {k: _plain(x) for k, x in value.items()}
    return value


def _param_value(value: Any) -> str:
    """A param as stored: a string, nested estimators by class name, cut to the size limit."""
    from mltrail.validation import MAX_PARAM_VALUE_LENGTH

    text = value if isinstance(value, str) else str(_plain(value))
    if len(text) > MAX_PARAM_VALUE_LENGTH:
        text = text[: MAX_PARAM_VALUE_LENGTH - 3] + "..."
    return text


def _params(est: Any) -> dict[str, str]:
    return {k: _param_value(v) for k, v in est.get_params(deep=True).items()}


def _rank_key(cv: Any, results: dict[str, Any]) -> str | None:
    if "rank_test_score" in results:
        return "rank_test_score"
    refit = getattr(cv, "refit", None)
    if isinstance(refit, str) and f"rank_test_{refit}" in results:
        return f"rank_test_{refit}"
    return next((k for k in results if k.startswith("rank_test_")), None)


def _training_metrics(est: Any, x: Any, y: Any, weight: Any) -> dict[str, float]:
    """Metrics on the training data; each one that cannot be computed is left out."""
    from sklearn import metrics as m
    from sklearn.base import is_classifier, is_regressor

    out: dict[str, float] = {}

    def add(name: str, compute: Callable[[], Any]) -> None:
        try:
            value = compute()
        except Exception:
            return
        if _is_number(value) or (hasattr(value, "ndim") and value.ndim == 0):
            out[TRAINING_PREFIX + name] = float(value)

    if is_classifier(est):
        try:
            pred = est.predict(x)
        except Exception:
            pred = None
        if pred is not None:
            add("accuracy_score", lambda: m.accuracy_score(y, pred, sample_weight=weight))
            try:  # one pass for all three (what precision_score & co. each compute)
                prf = m.precision_recall_fscore_support(
                    y, pred, average="weighted", sample_weight=weight
                )
            except Exception:
                prf = None
            if prf is not None:
                for i, name in enumerate(("precision_score", "recall_score", "f1_score")):
                    add(name, lambda i=i: prf[i])
        proba = None
        if hasattr(est, "predict_proba"):
            with contextlib.suppress(Exception):
                proba = est.predict_proba(x)
        if proba is not None:
            labels = getattr(est, "classes_", None)
            add("log_loss", lambda: m.log_loss(y, proba, sample_weight=weight, labels=labels))

            def roc_auc() -> float:
                if proba.ndim == 2 and proba.shape[1] == 2:
                    return m.roc_auc_score(y, proba[:, 1], sample_weight=weight)
                # One-vs-one, as MLflow does; it takes no sample weights, one-vs-rest does.
                return m.roc_auc_score(
                    y, proba, sample_weight=weight, multi_class="ovo" if weight is None else "ovr",
                    average="weighted", labels=labels,
                )  # fmt: skip

            add("roc_auc", roc_auc)
    elif is_regressor(est):
        try:
            pred = est.predict(x)
        except Exception:
            pred = None
        if pred is not None:
            add("mean_squared_error", lambda: m.mean_squared_error(y, pred, sample_weight=weight))
            mse = out.get(TRAINING_PREFIX + "mean_squared_error")
            if mse is not None and mse >= 0:
                out[TRAINING_PREFIX + "root_mean_squared_error"] = math.sqrt(mse)
            add(
                "mean_absolute_error",
                lambda: m.mean_absolute_error(y, pred, sample_weight=weight),
            )
            add("r2_score", lambda: m.r2_score(y, pred, sample_weight=weight))
    if hasattr(est, "score"):
        add(
            "score",
            lambda: est.score(x, y) if weight is None else est.score(x, y, sample_weight=weight),
        )
    return out


def _input_example(x: Any) -> Any:
    """The first rows of the training input, or None when they cannot serve as an example."""
    if x is None or hasattr(x, "tocsr"):  # no example for scipy sparse matrices
        return None
    try:
        from mltrail.models.signature import infer_schema

        example = x.iloc[:INPUT_EXAMPLE_ROWS] if hasattr(x, "iloc") else x[:INPUT_EXAMPLE_ROWS]
        infer_schema(example)
    except Exception:
        return None
    return example
