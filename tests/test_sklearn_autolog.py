"""scikit-learn autologging: what an outermost fit logs, and what it must never do."""

from __future__ import annotations

import importlib
import json
import warnings

import pytest

pytest.importorskip("sklearn")

import joblib
import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes, load_iris
from sklearn.decomposition import PCA
from sklearn.ensemble import BaggingClassifier, RandomForestClassifier, VotingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    RandomizedSearchCV,
    cross_val_predict,
    cross_val_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

import mltrail as mt
from mltrail.tracking import fluent
from mltrail.validation import MAX_PARAM_VALUE_LENGTH

# The module (the package's ``autolog`` attribute is the function until the module is imported).
al = importlib.import_module("mltrail.sklearn.autolog")

CLASSIFIER_METRICS = {
    "training_accuracy_score",
    "training_precision_score",
    "training_recall_score",
    "training_f1_score",
    "training_log_loss",
    "training_roc_auc",
    "training_score",
}
REGRESSOR_METRICS = {
    "training_mean_squared_error",
    "training_root_mean_squared_error",
    "training_mean_absolute_error",
    "training_r2_score",
    "training_score",
}


@pytest.fixture
def iris() -> tuple[np.ndarray, np.ndarray]:
    return load_iris(return_X_y=True)


@pytest.fixture
def autolog(project):
    """Autologging on, into the test's project; always switched off again afterwards."""
    mt.sklearn.autolog()
    yield mt.sklearn.autolog
    mt.sklearn.autolog(disable=True)


def all_runs() -> list:
    mt.flush()
    return mt.search_runs(output_format="runs", order_by="attributes.start_time")


def only_run():
    runs = all_runs()
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def artifact_paths(run_id: str) -> set[str]:
    return {f.path for f in fluent.get_client().list_artifacts(run_id)}


def test_estimator_params_tags_and_model(autolog, iris, tmp_path):
    X, y = iris
    model = LogisticRegression(C=0.5, max_iter=300)
    assert model.fit(X, y) is model
    run = only_run()
    assert run.info.status == "FINISHED" and run.info.run_name == "LogisticRegression"
    assert mt.active_run() is None
    params = run.data.params
    assert params["C"] == "0.5" and params["max_iter"] == "300" and params["class_weight"] == "None"
    assert set(params) == set(model.get_params(deep=True))
    assert run.data.tags["estimator_name"] == "LogisticRegression"
    assert run.data.tags["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert run.data.tags["mltrail.autologging"] == "sklearn"
    paths = artifact_paths(run.info.run_id)
    assert {"model/MLmodel", "model/model.pkl", "model/input_example.json"} <= paths
    folder = download(run.info.run_id, "model", tmp_path)
    meta = mt.models.get_model_info(folder)
    assert meta.signature is not None and meta.signature.outputs is not None
    example = json.loads((folder / "input_example.json").read_text())
    assert np.allclose(example["inputs"], X[:5])


def download(run_id: str, path: str, tmp_path):
    dst = tmp_path / "downloads" / run_id
    dst.mkdir(parents=True, exist_ok=True)
    return fluent.get_client().download_artifacts(run_id, path, dst)


def test_classifier_metrics(autolog, iris):
    X, y = iris
    model = LogisticRegression(max_iter=300).fit(X, y)
    metrics = only_run().data.metrics
    assert set(metrics) == CLASSIFIER_METRICS
    assert metrics["training_accuracy_score"] == pytest.approx(model.score(X, y))
    assert metrics["training_score"] == pytest.approx(model.score(X, y))
    assert 0.9 < metrics["training_roc_auc"] <= 1.0
    assert metrics["training_log_loss"] > 0


def test_binary_classifier_roc_auc_and_no_proba(autolog, iris):
    X, y = iris
    binary = y != 0
    DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, binary)
    from sklearn.svm import LinearSVC

    LinearSVC().fit(X, y)  # no predict_proba: no log_loss, no roc_auc
    tree, svc = all_runs()
    assert set(tree.data.metrics) == CLASSIFIER_METRICS
    assert set(svc.data.metrics) == CLASSIFIER_METRICS - {"training_log_loss", "training_roc_auc"}


def test_regressor_metrics(autolog):
    X, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(X, y)
    metrics = only_run().data.metrics
    assert set(metrics) == REGRESSOR_METRICS
    mse = float(np.mean((model.predict(X) - y) ** 2))
    assert metrics["training_mean_squared_error"] == pytest.approx(mse)
    assert metrics["training_root_mean_squared_error"] == pytest.approx(mse**0.5)
    assert metrics["training_r2_score"] == pytest.approx(model.score(X, y))


def test_sample_weight_and_keyword_arguments(autolog, iris):
    X, y = iris
    weight = np.where(y == 0, 5.0, 1.0)
    model = DecisionTreeClassifier(max_depth=1, random_state=0)
    assert model.fit(X=X, y=y, sample_weight=weight) is model
    metrics = only_run().data.metrics
    assert set(metrics) == CLASSIFIER_METRICS  # roc_auc too: one-vs-rest takes weights
    pred = model.predict(X)
    weighted = float(np.sum(weight * (pred == y)) / np.sum(weight))
    assert metrics["training_accuracy_score"] == pytest.approx(weighted)
    assert weighted != pytest.approx(float(np.mean(pred == y)))


def test_unsupervised_fit_logs_no_metrics(autolog, iris):
    X, _ = iris
    PCA(n_components=2).fit(X)
    run = only_run()
    assert run.data.metrics == {} and run.data.params["n_components"] == "2"
    # A transformer is served with transform.
    assert "model/MLmodel" in artifact_paths(run.info.run_id)


def test_fit_transform_logs_once(autolog, iris):
    X, _ = iris
    out = PCA(n_components=2).fit_transform(X)
    assert out.shape == (150, 2)
    StandardScaler().fit_transform(X)  # the mixin's fit_transform calls the patched fit
    assert [r.info.run_name for r in all_runs()] == ["PCA", "StandardScaler"]


def test_pipeline_is_one_run(autolog, iris):
    X, y = iris
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    pipe.fit(X, y)
    run = only_run()
    assert run.info.run_name == "Pipeline"
    assert run.data.params["steps"] == "[('scale', StandardScaler), ('clf', LogisticRegression)]"
    assert run.data.params["clf__C"] == "1.0" and run.data.params["clf"] == "LogisticRegression"
    assert set(run.data.metrics) == CLASSIFIER_METRICS


def test_pipeline_available_if_methods_keep_their_availability(autolog, iris):
    X, _y = iris
    with_fit_predict = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    assert not hasattr(with_fit_predict, "fit_predict")  # LogisticRegression has none
    assert hasattr(with_fit_predict, "fit_transform") is False
    transformers = Pipeline([("scale", StandardScaler()), ("pca", PCA(n_components=2))])
    assert transformers.fit_transform(X).shape == (150, 2)
    assert [r.info.run_name for r in all_runs()] == ["Pipeline"]


def test_ensembles_and_cross_val_score_log_no_inner_runs(autolog, iris):
    X, y = iris
    BaggingClassifier(LogisticRegression(max_iter=300), n_estimators=3, random_state=0).fit(X, y)
    VotingClassifier([("lr", LogisticRegression(max_iter=300)), ("dt", DecisionTreeClassifier())],
                     n_jobs=2).fit(X, y)  # fmt: skip
    RandomForestClassifier(n_estimators=5, n_jobs=2, random_state=0).fit(X, y)
    assert [r.info.run_name for r in all_runs()] == [
        "BaggingClassifier",
        "VotingClassifier",
        "RandomForestClassifier",
    ]
    scores = cross_val_score(LogisticRegression(max_iter=300), X, y, cv=3)
    assert len(scores) == 3
    assert len(cross_val_predict(LogisticRegression(max_iter=300), X, y, cv=3)) == len(y)
    with joblib.parallel_backend("threading"):
        cross_val_score(LogisticRegression(max_iter=300), X, y, cv=3, n_jobs=2)
    assert len(all_runs()) == 3


def _check_search_runs(max_runs: int, n_candidates: int) -> None:
    runs = all_runs()
    parents = [r for r in runs if r.info.parent_run_id is None]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.info.parent_run_id == parent.info.run_id]
    assert len(runs) == 1 + len(children)
    assert len(children) == min(max_runs, n_candidates)
    assert parent.data.params["best_C"] in ("0.01", "0.1", "1", "10")
    assert "best_cv_score" in parent.data.metrics
    assert set(parent.data.metrics) >= CLASSIFIER_METRICS
    assert parent.data.tags["estimator_name"] == "GridSearchCV"
    paths = artifact_paths(parent.info.run_id)
    assert {"cv_results.csv", "model/MLmodel", "best_estimator/MLmodel"} <= paths
    ranks = [c.data.metrics["rank_test_score"] for c in children]
    assert ranks == sorted(ranks)
    for child in children:
        assert child.info.status == "FINISHED"
        assert set(child.data.params) == {"C"}
        assert {"mean_test_score", "std_test_score", "rank_test_score"} <= set(child.data.metrics)
        assert child.data.tags["estimator_name"] == "LogisticRegression"
    best = children[0]
    assert best.data.params["C"] == parent.data.params["best_C"]
    assert best.data.metrics["mean_test_score"] == pytest.approx(
        parent.data.metrics["best_cv_score"]
    )


GRID = {"C": [0.01, 0.1, 1, 10]}


def test_grid_search_parent_children_and_cv_results(autolog, iris, tmp_path):
    X, y = iris
    autolog(max_tuning_runs=3)
    search = GridSearchCV(LogisticRegression(max_iter=300), GRID, cv=3).fit(X, y)
    _check_search_runs(3, 4)
    parent = next(r for r in all_runs() if r.info.parent_run_id is None)
    csv = download(parent.info.run_id, "cv_results.csv", tmp_path)
    frame = pd.read_csv(csv)
    assert len(frame) == 4 and "mean_test_score" in frame.columns
    assert list(frame["rank_test_score"]) == list(search.cv_results_["rank_test_score"])


def test_grid_search_with_threads(autolog, iris):
    X, y = iris
    with joblib.parallel_backend("threading"):
        GridSearchCV(LogisticRegression(max_iter=300), GRID, cv=3, n_jobs=2).fit(X, y)
    _check_search_runs(5, 4)


def test_grid_search_with_default_backend_processes(autolog, iris):
    X, y = iris
    GridSearchCV(LogisticRegression(max_iter=300), GRID, cv=3, n_jobs=2).fit(X, y)
    _check_search_runs(5, 4)


def test_max_tuning_runs_none_and_zero(autolog, iris):
    X, y = iris
    autolog(max_tuning_runs=0)
    RandomizedSearchCV(LogisticRegression(max_iter=300), GRID, n_iter=2, cv=2, random_state=0).fit(
        X, y
    )
    assert len(all_runs()) == 1
    autolog(max_tuning_runs=None)
    with mt.start_run() as parent:
        GridSearchCV(LogisticRegression(max_iter=300), GRID, cv=2).fit(X, y)
    children = [r for r in all_runs() if r.info.parent_run_id == parent.run_id]
    assert len(children) == 4
    with pytest.raises(mt.MltrailError, match="max_tuning_runs"):
        autolog(max_tuning_runs=-1)


def test_fit_inside_active_run_logs_there_and_leaves_it_open(autolog, iris):
    X, y = iris
    with mt.start_run(run_name="mine") as run:
        LogisticRegression(max_iter=300).fit(X, y)
        assert mt.active_run().run_id == run.run_id
        assert mt.get_run(run.run_id).info.status == "RUNNING"
        mt.log_metric("after", 1.0)
    got = only_run()
    assert got.info.run_name == "mine" and got.info.status == "FINISHED"
    assert CLASSIFIER_METRICS | {"after"} == set(got.data.metrics)
    assert got.data.tags["estimator_name"] == "LogisticRegression"


def test_exclusive_leaves_user_runs_alone(autolog, iris):
    X, y = iris
    autolog(exclusive=True)
    with mt.start_run() as run:
        LogisticRegression(max_iter=300).fit(X, y)
    assert only_run().data.metrics == {} and artifact_paths(run.run_id) == set()
    LogisticRegression(max_iter=300).fit(X, y)  # no active run: logged as usual
    assert len(all_runs()) == 2


def test_disable_restores_the_original_methods(project, iris):
    originals = {
        cls: cls.__dict__.get("fit")
        for cls in (LogisticRegression, Pipeline, PCA, StandardScaler, GridSearchCV.__mro__[1])
    }
    pca_fit_transform = PCA.__dict__["fit_transform"]
    pipe_fit_predict = Pipeline.__dict__["fit_predict"]
    mt.sklearn.autolog()
    assert LogisticRegression.fit is not originals[LogisticRegression]
    assert Pipeline.__dict__["fit_predict"] is not pipe_fit_predict
    mt.sklearn.autolog(disable=True)
    for cls, fit in originals.items():
        assert cls.__dict__.get("fit") is fit
    assert LogisticRegression.fit is originals[LogisticRegression]
    assert PCA.__dict__["fit_transform"] is pca_fit_transform
    assert Pipeline.__dict__["fit_predict"] is pipe_fit_predict
    assert not al.is_enabled()
    LogisticRegression(max_iter=300).fit(*iris)
    assert all_runs() == []


def test_calling_autolog_twice_does_not_double_patch(autolog, iris):
    patched = LogisticRegression.fit
    count = len(al._originals)
    autolog(log_models=False)
    assert LogisticRegression.fit is patched and len(al._originals) == count
    assert LogisticRegression.fit.__wrapped__ is al._originals[(LogisticRegression, "fit")]
    LogisticRegression(max_iter=300).fit(*iris)
    run = only_run()
    assert artifact_paths(run.info.run_id) == set()  # the new options apply
    assert set(run.data.metrics) == CLASSIFIER_METRICS


def test_package_function_survives_importing_the_module(project, iris):
    # Importing mltrail.sklearn.autolog rebinds the package attribute to the module; calls
    # through mt.sklearn.autolog must keep working either way.
    for _ in range(2):
        mt.sklearn.autolog(log_models=False)
        assert al.is_enabled()
        mt.sklearn.autolog(disable=True)
        assert not al.is_enabled()
    LogisticRegression(max_iter=300).fit(*iris)
    assert all_runs() == []


def test_patched_fit_keeps_its_signature(autolog):
    import inspect

    params = inspect.signature(LogisticRegression.fit).parameters
    assert list(params) == ["self", "X", "y", "sample_weight"]


def test_failure_inside_logging_warns_once_and_returns_the_model(autolog, iris, monkeypatch):
    X, y = iris

    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr("mltrail.models.api.log_model", broken)
    model = LogisticRegression(max_iter=300)
    with pytest.warns(al.AutologWarning) as caught:
        assert model.fit(X, y) is model
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "model (OSError: disk on fire)" in message and "LogisticRegression.fit" in message
    assert caught[0].filename == __file__  # points at the user's fit call
    assert model.predict(X[:2]).shape == (2,)
    run = only_run()  # everything else was logged and the run ended normally
    assert run.info.status == "FINISHED" and set(run.data.metrics) == CLASSIFIER_METRICS


def test_unusable_store_never_breaks_fit(autolog, iris, tmp_path):
    X, y = iris
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    mt.set_tracking_uri(str(blocker / "proj"))
    model = LogisticRegression(max_iter=300)
    with pytest.warns(al.AutologWarning, match="could not start a run") as caught:
        assert model.fit(X, y) is model
    assert len(caught) == 1
    assert model.score(X, y) > 0.9
    # Inner fits of a search do not try (and warn) again.
    with pytest.warns(al.AutologWarning) as caught:
        GridSearchCV(LogisticRegression(max_iter=300), GRID, cv=2).fit(X, y)
    assert len(caught) == 1


def test_silent_suppresses_the_warning(autolog, iris, monkeypatch):
    autolog(silent=True)
    monkeypatch.setattr("mltrail.models.api.log_model", lambda *a, **k: 1 / 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegression(max_iter=300).fit(*iris)
    assert only_run().info.status == "FINISHED"


def test_fit_that_raises_marks_the_run_failed_and_reraises(autolog, iris):
    X, _y = iris
    with pytest.raises(ValueError, match="at least 2 classes") as info:
        LogisticRegression().fit(X, np.zeros(len(X)))
    assert info.value.__context__ is None and info.value.__cause__ is None
    run = only_run()
    assert run.info.status == "FAILED" and run.data.params["C"] == "1.0"
    assert run.data.metrics == {} and mt.active_run() is None
    # Inside a user's run, the run stays open (the user's with-block decides).
    with pytest.raises(ValueError), mt.start_run() as mine:
        LogisticRegression().fit(X, np.zeros(len(X)))
    assert mt.get_run(mine.run_id).info.status == "FAILED"


def test_fit_failure_inside_active_run_leaves_it_running(autolog, iris):
    X, _y = iris
    with mt.start_run() as run:
        with pytest.raises(ValueError):
            LogisticRegression().fit(X, np.zeros(len(X)))
        assert mt.active_run().run_id == run.run_id
        assert mt.get_run(run.run_id).info.status == "RUNNING"
    assert mt.get_run(run.run_id).info.status == "FINISHED"


def test_long_and_nested_param_values(autolog, iris):
    X, _y = iris
    long = FunctionTransformer(kw_args={"text": "x" * (MAX_PARAM_VALUE_LENGTH + 100)})
    long.fit(X)
    params = only_run().data.params
    assert len(params["kw_args"]) == MAX_PARAM_VALUE_LENGTH and params["kw_args"].endswith("...")
    assert params["func"] == "None"


def test_model_options(autolog, iris, tmp_path):
    X, y = iris
    frame = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    autolog(log_model_signatures=False)
    LogisticRegression(max_iter=300).fit(frame, y)
    autolog(log_model_signatures=True, log_input_examples=False)
    LogisticRegression(max_iter=300).fit(frame, y)
    no_signature, no_example = all_runs()
    folder = download(no_signature.info.run_id, "model", tmp_path)
    assert (folder / "input_example.json").exists()
    assert mt.models.get_model_info(folder).signature is None
    folder = download(no_example.info.run_id, "model", tmp_path)
    assert not (folder / "input_example.json").exists()
    signature = mt.models.get_model_info(folder).signature
    assert [c.name for c in signature.inputs.columns] == ["sl", "sw", "pl", "pw"]


def test_logged_model_loads_from_downloaded_artifacts(autolog, iris, tmp_path):
    X, y = iris
    model = LogisticRegression(max_iter=300).fit(X, y)
    run_id = only_run().info.run_id
    folder = fluent.get_client().download_artifacts(run_id, "model", tmp_path / "dl")
    loaded = mt.models.load_model(folder)
    assert (loaded.predict(X[:10]) == model.predict(X[:10])).all()


def test_logged_model_loads_from_runs_uri(autolog, iris):
    X, y = iris
    model = LogisticRegression(max_iter=300).fit(X, y)
    run_id = only_run().info.run_id
    loaded = mt.load_model(f"runs:/{run_id}/model")
    assert (loaded.predict(X[:10]) == model.predict(X[:10])).all()
    assert isinstance(mt.sklearn.load_model(f"runs:/{run_id}/model"), LogisticRegression)


def test_search_best_estimator_model_predicts(autolog, iris, tmp_path):
    X, y = iris
    search = GridSearchCV(LogisticRegression(max_iter=300), GRID, cv=2).fit(X, y)
    parent = next(r for r in all_runs() if r.info.parent_run_id is None)
    folder = download(parent.info.run_id, "best_estimator", tmp_path)
    best = mt.models.load_model(folder)
    assert (best.predict(X[:5]) == search.best_estimator_.predict(X[:5])).all()
    assert parent.data.params["estimator"] == "LogisticRegression"


def test_registered_model_name_registers_each_logged_model(autolog, iris):
    X, y = iris
    autolog(registered_model_name="iris-lr")
    first = LogisticRegression(C=0.1, max_iter=300).fit(X, y)
    autolog(registered_model_name="iris-lr", log_model_signatures=False)
    GridSearchCV(LogisticRegression(max_iter=300), {"C": [1, 10]}, cv=2).fit(X, y)
    client = fluent.get_client()
    versions = sorted(client.list_model_versions("iris-lr"), key=lambda v: int(v.version))
    assert [int(v.version) for v in versions] == [1, 2]  # the search registers "model" only
    parent = next(r for r in all_runs() if r.info.run_name == "GridSearchCV")
    assert versions[1].run_id == parent.info.run_id
    loaded = mt.load_model("models:/iris-lr/1")
    assert (loaded.predict(X[:10]) == first.predict(X[:10])).all()
    assert mt.load_model("models:/iris-lr/2").signature is None
