"""``mltrail models …``: the registry from the command line, on a project with real models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import mltrail as mt
from mltrail.config import init_project
from tests.cli.conftest import Invoke


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, iris) -> dict[int, str]:
    """A project with model 'iris-lr' at versions 1 and 2 (accuracy 0.8 and 0.95)."""
    init_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    X, y = iris
    runs = {}
    for version, accuracy in ((1, 0.8), (2, 0.95)):
        with mt.start_run(run_name=f"lr-{version}") as run:
            model = LogisticRegression(max_iter=200, C=version).fit(X, y)
            mt.log_metric("accuracy", accuracy)
            info = mt.log_model(model, "model", registered_name="iris-lr", input_example=X[:3])
            assert info.registered_model_version == version
            runs[version] = run.run_id
    mt.flush()
    return runs


def test_ls_show_versions(invoke: Invoke, project):
    out = invoke("models", "ls").stdout
    assert "iris-lr" in out and "2" in out
    listed = json.loads(invoke("models", "ls", "--json").stdout)
    assert [m["name"] for m in listed] == ["iris-lr"]
    assert listed[0]["latest_version"] == 2

    shown = invoke("models", "show", "iris-lr").stdout
    assert "Versions" in shown and project[2][:8] in shown
    versions = json.loads(invoke("models", "versions", "iris-lr", "--json").stdout)
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["run_id"] == project[2]
    assert all(
        len(line) <= 80 for line in invoke("models", "versions", "iris-lr").stdout.split("\n")
    )


def test_alias_stage_and_history(invoke: Invoke, project):
    invoke("models", "alias", "iris-lr", "1", "production", "-m", "first one")
    out = invoke("models", "alias", "iris-lr", "2", "production", "-m", "beats v1").stdout
    assert "iris-lr@production -> version 2 (was version 1)" in out
    out = invoke("models", "stage", "iris-lr", "2", "production", "--archive-existing").stdout
    assert "version 2 is now in Production" in out

    events = json.loads(invoke("models", "history", "iris-lr", "--json").stdout)
    moved = next(e for e in events if e["action"] == "set_alias" and e["after"] == "2")
    assert (
        moved["before"] == "1" and moved["comment"] == "beats v1" and moved["key"] == "production"
    )
    assert any(e["action"] == "transition_stage" and e["after"] == "Production" for e in events)
    table = invoke("models", "history", "iris-lr").stdout
    assert "set_alias" in table and "beats v1" in table

    invoke("models", "unalias", "iris-lr", "production")
    assert json.loads(invoke("models", "ls", "--json").stdout)[0]["aliases"] == {}


def test_check_is_a_ci_gate(invoke: Invoke, project):
    invoke("models", "alias", "iris-lr", "2", "production")
    ok = invoke("models", "check", "iris-lr@production", "--metric", "accuracy>=0.9")
    assert "PASS" in ok.stdout and "accuracy>=0.9" in ok.stdout
    failed = invoke("models", "check", "iris-lr/1", "--metric", "accuracy>=0.9", code=1)
    assert "FAIL" in failed.stdout
    missing = invoke("models", "check", "iris-lr", "--metric", "f1>0.5", "--json", code=1)
    assert json.loads(missing.stdout)["results"][0]["value"] is None
    bad = invoke("models", "check", "iris-lr", "--metric", "accuracy~0.9", code=1)
    assert "cannot read the condition 'accuracy~0.9'" in bad.stderr


def test_describe_tag_rename_delete(invoke: Invoke, project):
    invoke("models", "describe", "iris-lr", "-d", "Iris classifier")
    invoke("models", "describe", "iris-lr", "1", "-d", "baseline")
    invoke("models", "tag", "iris-lr", "-s", "team=ml", "-s", "tier=gold")
    invoke("models", "tag", "iris-lr", "-u", "tier")
    invoke("models", "tag", "iris-lr", "1", "-s", "validated=yes")
    shown = json.loads(invoke("models", "show", "iris-lr", "--json").stdout)
    assert shown["description"] == "Iris classifier"
    assert shown["tags"] == {"team": "ml"}
    v1 = next(v for v in shown["versions"] if v["version"] == 1)
    assert v1["description"] == "baseline" and v1["tags"] == {"validated": "yes"}

    invoke("models", "rename", "iris-lr", "iris")
    invoke("models", "alias", "iris", "1", "production")
    refused = invoke("models", "delete", "iris", "1", "--yes", code=1)
    assert "production" in refused.stderr
    invoke("models", "delete", "iris", "1", "--yes", "--force")
    versions = json.loads(invoke("models", "versions", "iris", "--all", "--json").stdout)
    assert {v["version"]: v["lifecycle_stage"] for v in versions} == {2: "active", 1: "deleted"}
    invoke("models", "delete", "iris", "--yes")
    assert json.loads(invoke("models", "ls", "--json").stdout) == []
    # The audit trail outlives the model.
    assert json.loads(invoke("models", "history", "iris", "--json").stdout)


def test_register_and_download(invoke: Invoke, project, tmp_path, iris):
    out = invoke("models", "register", f"runs:/{project[1][:8]}/model", "other").stdout
    assert "Registered other version 1" in out
    invoke("models", "download", "other/1", str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "MLmodel").is_file()
    assert (tmp_path / "dl" / "model.pkl").is_file()
    X, _ = iris
    model = mt.load_model(str(tmp_path / "dl"))
    assert len(model.predict(X[:2])) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("models", "show", "nope"), "nope"),
        (("models", "versions", "nope"), "nope"),
        (("models", "alias", "iris-lr", "9", "prod"), "9"),
        (("models", "alias", "iris-lr", "1", "latest"), "latest"),
        (("models", "stage", "iris-lr", "1", "Live"), "Live"),
        (("models", "check", "iris-lr@nope", "--metric", "accuracy>0"), "nope"),
        (("models", "register", "runs:/ffffffff/model", "x"), "ffffffff"),
        (("models", "download", "iris-lr/7", "dl"), "7"),
    ],
)
def test_bad_input_is_one_clear_line(invoke: Invoke, project, args, message):
    result = invoke(*args, code=1)
    assert "error:" in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_bad_version_numbers_are_usage_errors(invoke: Invoke, project):
    assert (
        "is not a version number" in invoke("models", "alias", "iris-lr", "x", "a", code=2).stderr
    )
    assert "start at 1" in invoke("models", "stage", "iris-lr", "0", "None", code=2).stderr


def test_a_damaged_model_is_refused_and_nothing_is_left_behind(invoke: Invoke, project, tmp_path):
    from mltrail.objects.local import LocalObjectStore

    client = mt.MltrailClient()
    pickled = next(f for f in client.list_artifacts(project[2], "model") if f.path.endswith(".pkl"))
    path = LocalObjectStore(tmp_path / ".mltrail" / "objects").path_of(pickled.hash)
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    result = invoke("models", "download", "iris-lr/2", str(tmp_path / "dl"), code=1)
    assert "refusing to load models:/iris-lr/2" in result.stderr
    assert not (tmp_path / "dl").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mltrail-download-")]
    with pytest.raises(mt.MltrailError, match="refusing to load"):
        mt.load_model("models:/iris-lr/2")


def test_tag_checks_every_key_before_writing(invoke: Invoke, project):
    result = invoke("models", "tag", "iris-lr", "2", "-s", "validated=yes", "-u", "nope", code=2)
    assert "has no tag 'nope'; nothing was changed" in result.stderr
    shown = json.loads(invoke("models", "show", "iris-lr", "--json").stdout)
    assert next(v for v in shown["versions"] if v["version"] == 2)["tags"] == {}
    assert "not KEY=VALUE" in invoke("models", "tag", "iris-lr", "-s", "novalue", code=2).stderr
