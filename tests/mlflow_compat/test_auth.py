"""The real mlflow client against a server with auth on: tokens, roles and permissions.

The client sends ``MLFLOW_TRACKING_TOKEN`` as a Bearer token, or ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD`` as Basic credentials (the token is the password). The server keeps a
verified token and its user's permissions for 30 s, so each test sets permissions before the
first request with the token they are about.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.mlflow_compat.conftest import Served, StartServer, error_code, raises_code

pytestmark = pytest.mark.filterwarnings("ignore")


@dataclass
class AuthServer:
    """A live server with auth on, and its store for making tokens and permissions."""

    served: Served
    store: Any

    def token(self, user: str, role: str) -> str:
        _, token = self.store.create_token(user, role)
        return token

    def experiment(self, name: str) -> str:
        """A new experiment made on the store directly; its id."""
        return self.store.create_experiment(name)


@pytest.fixture
def auth(start_server: StartServer) -> Iterator[AuthServer]:
    import mlflow

    from mltrail.store import open_store

    served = start_server(auth=True)
    mlflow.set_tracking_uri(served.url)
    store = open_store(served.store_uri)
    yield AuthServer(served, store)
    store.close()


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def _as(monkeypatch: pytest.MonkeyPatch, token: str | None) -> None:
    """Make the client's next requests carry ``token`` as a Bearer token (None: no credentials)."""
    if token is None:
        monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)



def _log_model(wine) -> Any:
    """Log a small model in the active run; its ModelInfo."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    X, y = wine
    return mlflow.sklearn.log_model(
        LogisticRegression(max_iter=200).fit(X, y),
        name="model",
        serialization_format="cloudpickle",
        pip_requirements=["scikit-learn"],
    )


# -- who may come in -----------------------------------------------------------------------------


def test_a_write_token_tracks_and_registers_and_is_the_actor(
    auth: AuthServer, monkeypatch, name, wine
):
    import mlflow
    import mlflow.pyfunc

    X, _ = wine
    _as(monkeypatch, auth.token("alice", "write"))
    mlflow.set_experiment(name)
    with mlflow.start_run() as run:
        mlflow.log_param("lr", "0.1")
        mlflow.log_metric("accuracy", 0.9)
        info = _log_model(wine)
    version = mlflow.register_model(f"models:/{info.model_id}", name)
    c = _client()
    c.set_registered_model_alias(name, "champion", version.version)
    got = c.get_run(run.info.run_id)
    assert got.data.metrics == {"accuracy": 0.9} and got.data.params == {"lr": "0.1"}
    assert got.info.user_id == "alice"  # the token's user, whatever the client's OS user is
    assert version.user_id == "alice"
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(X)
    assert list(loaded) == list(mlflow.pyfunc.load_model(info.model_uri).predict(X))

    # The audit trail names the token's user as the author of every change.
    mt_client = auth.served.mltrail()
    events = mt_client.get_model_history(name)
    mt_client.close()
    assert {e.action for e in events} == {"create_model", "create_version", "set_alias"}
    assert {e.actor for e in events} == {"alice"}


def test_basic_credentials_take_the_token_as_password(auth: AuthServer, monkeypatch, name):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "any-name")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", auth.token("bob", "write"))
    c = _client()
    exp_id = c.create_experiment(name)
    run = c.create_run(exp_id)
    c.log_metric(run.info.run_id, "loss", 0.5)
    assert c.get_run(run.info.run_id).info.user_id == "bob"  # the token's user, not the name
    c.create_registered_model(name)
    mt_client = auth.served.mltrail()
    [event] = mt_client.get_model_history(name)
    mt_client.close()
    assert (event.action, event.actor) == ("create_model", "bob")
    assert mlflow.get_experiment_by_name(name).experiment_id == exp_id

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-a-token")
    raises_code("UNAUTHENTICATED", c.get_experiment, exp_id)


def test_no_or_a_wrong_token_is_unauthenticated(auth: AuthServer, monkeypatch, name):
    import requests

    exp_id = auth.experiment(name)
    c = _client()
    message = raises_code("UNAUTHENTICATED", c.get_experiment, exp_id)
    assert "token" in message
    raises_code("UNAUTHENTICATED", c.search_experiments)
    raises_code("UNAUTHENTICATED", c.create_experiment, name + "-new")
    raises_code("UNAUTHENTICATED", c.search_registered_models)
    raw = requests.get(
        f"{auth.served.url}/api/2.0/mlflow/experiments/get",
        params={"experiment_id": exp_id},
        timeout=30,
    )
    assert raw.status_code == 401 and raw.json()["error_code"] == "UNAUTHENTICATED"

    good = auth.token("carol", "write")
    for wrong in (good[:-3] + "xyz", "mlt_0123456789ab_secret", "nonsense"):
        _as(monkeypatch, wrong)
        raises_code("UNAUTHENTICATED", c.get_experiment, exp_id)
        raises_code("UNAUTHENTICATED", c.create_registered_model, name)
    _as(monkeypatch, good)
    assert c.get_experiment(exp_id).name == name
    # Nothing the refused calls asked for was made.
    assert [m.name for m in c.search_registered_models()] == []
    assert c.get_experiment_by_name(name + "-new") is None


def test_a_read_token_reads_but_does_not_write(auth: AuthServer, monkeypatch, name, wine):
    import mlflow
    import mlflow.pyfunc

    writer, reader = auth.token("alice", "write"), auth.token("reader", "read")
    _as(monkeypatch, writer)
    c = _client()
    exp_id = c.create_experiment(name)
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_metric("accuracy", 0.9)
        info = _log_model(wine)
    c.create_registered_model(name)
    c.create_model_version(name, info.model_uri, model_id=info.model_id)

    _as(monkeypatch, reader)
    assert c.get_experiment(exp_id).name == name
    assert c.get_run(run.info.run_id).data.metrics == {"accuracy": 0.9}
    assert [r.info.run_id for r in c.search_runs([exp_id])] == [run.info.run_id]
    assert c.get_registered_model(name).name == name
    assert c.get_model_version(name, "1").run_id == run.info.run_id
    assert [m.name for m in c.search_registered_models()] == [name]
    X, _ = wine
    assert len(mlflow.pyfunc.load_model(f"models:/{name}/1").predict(X)) == len(X)
    raises_code("PERMISSION_DENIED", c.create_run, exp_id)
    raises_code("PERMISSION_DENIED", c.log_metric, run.info.run_id, "accuracy", 1.0)
    raises_code("PERMISSION_DENIED", c.create_experiment, name + "-new")
    raises_code("PERMISSION_DENIED", c.create_registered_model, name + "-new")
    raises_code("PERMISSION_DENIED", c.set_registered_model_alias, name, "champion", "1")
    raises_code("PERMISSION_DENIED", c.delete_registered_model, name)
    assert c.get_run(run.info.run_id).data.metrics == {"accuracy": 0.9}
    assert c.get_registered_model(name).aliases == {}


# -- per-experiment and per-model permissions ----------------------------------------------------


def test_permission_none_hides_an_experiment(auth: AuthServer, monkeypatch, name, tmp_path):
    import mlflow
    import mlflow.artifacts
    import requests
    from mlflow.exceptions import MlflowException

    (tmp_path / "notes.txt").write_text("secret notes\n")
    _as(monkeypatch, auth.token("admin", "admin"))
    c = _client()
    hidden, shown = c.create_experiment(f"{name}-hidden"), c.create_experiment(f"{name}-shown")
    runs = {}
    for exp_id in (hidden, shown):
        with mlflow.start_run(experiment_id=exp_id) as run:
            mlflow.log_artifact(str(tmp_path / "notes.txt"))
        runs[exp_id] = run.info.run_id
    artifact_uri = c.get_run(runs[hidden]).info.artifact_uri
    auth.store.set_permission("bob", "experiment", hidden, "none")
    _as(monkeypatch, auth.token("bob", "write"))  # first used after the permission is set

    # The hidden experiment is as good as missing, and its run is refused.
    assert c.get_experiment_by_name(f"{name}-hidden") is None
    assert mlflow.get_experiment_by_name(f"{name}-hidden") is None
    raises_code("PERMISSION_DENIED", c.get_experiment, hidden)
    raises_code("PERMISSION_DENIED", c.get_run, runs[hidden])
    raises_code("PERMISSION_DENIED", c.create_run, hidden)
    listed = [e.experiment_id for e in c.search_experiments()]
    assert shown in listed and hidden not in listed
    # Naming it in a run search is refused (as mltrail's own API does; MLflow's basic-auth
    # server drops it from the list instead); searching everything leaves its runs out.
    raises_code("PERMISSION_DENIED", c.search_runs, [hidden])
    everything = set(mlflow.search_runs(search_all_experiments=True)["run_id"])
    assert runs[hidden] not in everything and runs[shown] in everything
    with pytest.raises(MlflowException) as err:
        mlflow.artifacts.download_artifacts(
            run_id=runs[hidden], artifact_path="notes.txt", dst_path=str(tmp_path / "a")
        )
    assert error_code(err.value) == "PERMISSION_DENIED"
    # Past the run lookup, the artifact service itself refuses the file (the client's artifact
    # repository raises requests' HTTPError for it, as against MLflow's server).
    with pytest.raises(requests.HTTPError) as refused:
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"{artifact_uri}/notes.txt", dst_path=str(tmp_path / "b")
        )
    assert refused.value.response.status_code == 403
    assert refused.value.response.json()["error_code"] == "PERMISSION_DENIED"
    assert not (tmp_path / "b" / "notes.txt").exists()

    # The other experiment stays usable.
    assert c.get_experiment_by_name(f"{name}-shown").experiment_id == shown
    got = mlflow.artifacts.download_artifacts(
        run_id=runs[shown], artifact_path="notes.txt", dst_path=str(tmp_path / "c")
    )
    assert Path(got).read_text() == "secret notes\n"
    with mlflow.start_run(experiment_id=shown) as run:
        mlflow.log_metric("m", 1.0)
    assert c.get_run(run.info.run_id).info.user_id == "bob"


def test_permission_read_on_a_model_loads_it_but_sets_no_alias(
    auth: AuthServer, monkeypatch, name, wine
):
    import mlflow
    import mlflow.pyfunc

    X, _ = wine
    _as(monkeypatch, auth.token("admin", "admin"))
    c = _client()
    mlflow.set_experiment(name)
    with mlflow.start_run():
        info = _log_model(wine)
    for model in (name, f"{name}-other"):
        mlflow.register_model(f"models:/{info.model_id}", model)
        c.set_registered_model_alias(model, "champion", "1")
    secret = f"{name}-secret"
    mlflow.register_model(f"models:/{info.model_id}", secret)
    expected = list(mlflow.pyfunc.load_model(info.model_uri).predict(X))
    auth.store.set_permission("bob", "model", name, "read")
    auth.store.set_permission("bob", "model", secret, "none")
    _as(monkeypatch, auth.token("bob", "write"))

    for uri in (f"models:/{name}/1", f"models:/{name}@champion"):
        assert list(mlflow.pyfunc.load_model(uri).predict(X)) == expected, uri
    assert c.get_model_version_by_alias(name, "champion").version == "1"
    raises_code("PERMISSION_DENIED", c.set_registered_model_alias, name, "challenger", "1")
    raises_code("PERMISSION_DENIED", c.delete_registered_model_alias, name, "champion")
    raises_code("PERMISSION_DENIED", c.set_registered_model_tag, name, "k", "v")
    raises_code("PERMISSION_DENIED", c.create_model_version, name, info.model_uri)
    assert c.get_registered_model(name).aliases == {"champion": "1"}
    # On a model without a permission of its own, the write role applies.
    c.set_registered_model_alias(f"{name}-other", "challenger", "1")
    mt_client = auth.served.mltrail()
    events = mt_client.get_model_history(f"{name}-other")
    mt_client.close()
    assert (events[0].action, events[0].actor, events[0].key) == ("set_alias", "bob", "challenger")

    # A model with permission none is not there for the user, not even in an error's hint.
    assert {m.name for m in c.search_registered_models()} == {name, f"{name}-other"}
    assert {mv.name for mv in c.search_model_versions(f"run_id = '{info.run_id}'")} == {
        name, f"{name}-other"
    }  # fmt: skip
    raises_code("PERMISSION_DENIED", c.get_registered_model, secret)
    raises_code("PERMISSION_DENIED", mlflow.pyfunc.load_model, f"models:/{secret}/1")
    source = f"models:/{secret}/1"  # as a source for a version of a model the user may write
    raises_code("PERMISSION_DENIED", c.create_model_version, f"{name}-other", source)
    message = raises_code("RESOURCE_DOES_NOT_EXIST", c.get_registered_model, f"{name}-missing")
    assert secret not in message
    message = raises_code("RESOURCE_DOES_NOT_EXIST", c.create_model_version, f"{name}-no", "x")
    assert secret not in message
