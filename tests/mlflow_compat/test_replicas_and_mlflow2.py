"""Several server replicas behind one client, and the 2.x mlflow client in a venv of its own."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest

from tests.mlflow_compat.conftest import StartServer

pytestmark = pytest.mark.filterwarnings("ignore")

#: A Python with mlflow 2.x and scikit-learn (.ci/run makes .venv-mlflow2 and sets it).
MLFLOW2_PYTHON = os.environ.get("MLTRAIL_MLFLOW2_PYTHON")


@pytest.mark.postgres
@pytest.mark.long  # two servers and the mlflow client: ~40 s
def test_two_replicas_on_one_postgres_store(start_server: StartServer, postgres, name, wine):
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    X, y = wine
    uri = postgres.create_database()
    first, second = start_server(uri), start_server(uri)
    model = LogisticRegression(max_iter=5000).fit(X, y)
    mlflow.set_tracking_uri(first.url)
    mlflow.set_experiment(name)
    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 0.9)
        info = mlflow.sklearn.log_model(
            model, name="model", serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )  # fmt: skip
    mlflow.set_tracking_uri(second.url)
    assert mlflow.get_run(run.info.run_id).data.metrics == {"acc": 0.9}
    mlflow.register_model(f"models:/{info.model_id}", name)
    mlflow.MlflowClient().set_registered_model_alias(name, "production", "1")
    mlflow.set_tracking_uri(first.url)
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@production")
    assert list(loaded.predict(X[:5])) == list(model.predict(X[:5]))


_MLFLOW2_CLIENT = """
import json, sys, warnings
warnings.filterwarnings("ignore")
import mlflow, mlflow.sklearn
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
url, name, folder = sys.argv[1:4]
X, y = load_wine(return_X_y=True, as_frame=True)
mlflow.set_tracking_uri(url)
mlflow.set_experiment(name)
with open(folder + "/notes.txt", "w") as f:
    f.write("from mlflow 2")
model = LogisticRegression(max_iter=5000).fit(X, y)
with mlflow.start_run() as run:
    mlflow.log_params({"C": 1.0})
    mlflow.log_metric("loss", 0.25, step=3)
    mlflow.log_artifact(folder + "/notes.txt")
    mlflow.sklearn.log_model(model, "model", registered_model_name=name,
                             pip_requirements=["scikit-learn"])
client = mlflow.MlflowClient()
client.set_registered_model_alias(name, "production", "1")
client.transition_model_version_stage(name, "1", "Production")
same = list(mlflow.pyfunc.load_model(f"models:/{name}@production").predict(X[:5]))
staged = list(mlflow.pyfunc.load_model(f"models:/{name}/Production").predict(X[:5]))
found = mlflow.search_runs(experiment_names=[name], filter_string="metrics.loss < 0.5")
print(json.dumps({
    "version": mlflow.__version__,
    "run_id": run.info.run_id,
    "same": same == list(model.predict(X[:5])) == staged,
    "found": list(found["run_id"]),
    "notes": mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes.txt"),
}))
"""


def test_the_mlflow_2_client(start_server: StartServer, name, tmp_path):
    if not MLFLOW2_PYTHON:
        if os.environ.get("MLTRAIL_REQUIRE_MLFLOW2"):
            pytest.fail("MLTRAIL_MLFLOW2_PYTHON is not set (.ci/run makes .venv-mlflow2)")
        pytest.skip("set MLTRAIL_MLFLOW2_PYTHON to a Python with mlflow 2.x and scikit-learn")
    served = start_server()
    script = tmp_path / "client.py"
    script.write_text(textwrap.dedent(_MLFLOW2_CLIENT))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    done = subprocess.run(
        [MLFLOW2_PYTHON, str(script), served.url, name, str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["version"].startswith("2.") and got["same"] is True
    assert got["found"] == [got["run_id"]] and got["notes"] == "from mlflow 2"
    mt_client = served.mltrail()
    run = mt_client.get_run(got["run_id"])
    assert run.data.metrics == {"loss": 0.25} and run.data.params == {"C": "1.0"}
    assert "model/MLmodel" in {f.path for f in mt_client.list_artifacts(got["run_id"])}
    [version] = mt_client.list_model_versions(name)
    assert (version.stage, version.aliases, version.run_id) == (
        "Production", ["production"], got["run_id"]
    )
    mt_client.close()


@pytest.mark.postgres
def test_a_stopped_database_answers_503_and_nothing_is_lost(start_server: StartServer, name):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from tests.pg import PostgresServer, find_pg_bin

    # A server of its own: stopping the session's would disturb other tests of this worker.
    pg = PostgresServer(find_pg_bin())
    pg.start()
    try:
        import mlflow

        served = start_server(pg.create_database())
        mlflow.set_tracking_uri(served.url)
        c = MlflowClient()
        run_id = c.create_run(c.create_experiment(name)).info.run_id
        c.log_metric(run_id, "m", 1.0, step=0)
        pg.stop_server()
        with pytest.raises(MlflowException) as err:
            c.log_metric(run_id, "m", 2.0, step=1)
        assert "503" in str(err.value)  # retried by the client, then reported
        pg.start_server()
        c.log_metric(run_id, "m", 3.0, step=2)
        assert [(m.step, m.value) for m in c.get_metric_history(run_id, "m")] == [
            (0, 1.0),
            (2, 3.0),
        ]
    finally:
        pg.stop()
