"""The registry's Python API on MltrailClient: register_model from a real run, URIs, history."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mltrail.entities import ModelVersion
from mltrail.errors import (
    AlreadyExists,
    IntegrityError,
    InvalidInput,
    InvalidState,
    InvalidValue,
    NotFound,
)
from mltrail.objects import hash_bytes, put_tree
from mltrail.registry import ResolvedModel
from mltrail.tracking.capture import current_user

MLMODEL = b"flavors:\n  python_function:\n    loader_module: mltrail.sklearn\n"
PICKLE = b"\x80\x04fake model bytes"


def _model_folder(tmp_path: Path, name: str = "folder", pickle: bytes = PICKLE) -> Path:
    folder = tmp_path / name
    (folder / "extra").mkdir(parents=True)
    (folder / "MLmodel").write_bytes(MLMODEL)
    (folder / "model.pkl").write_bytes(pickle)
    (folder / "extra" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(folder / "extra" / "run.sh", 0o755)
    return folder


def _run_with_model(client, tmp_path: Path, path: str = "model", **kw) -> str:
    run_id = client.create_run("0").run_id
    client.log_artifacts(run_id, _model_folder(tmp_path, **kw), path)
    client.log_text(run_id, "notes", "notes.txt")
    return run_id


def test_register_model_freezes_the_run_model_folder(client, tmp_path):
    run_id = _run_with_model(client, tmp_path)
    mv = client.register_model(f"runs:/{run_id[:8]}/model", "wine-rf", "first", {"algo": "rf"})
    assert isinstance(mv, ModelVersion)
    assert (mv.name, mv.version, mv.run_id, mv.artifact_path, mv.source) == (
        "wine-rf",
        1,
        run_id,
        "model",
        f"runs:/{run_id}/model",
    )
    assert (mv.description, mv.tags, mv.user_id) == ("first", {"algo": "rf"}, current_user())
    rows = client.model_tree_rows(mv)
    assert rows == [
        ["MLmodel", hash_bytes(MLMODEL), len(MLMODEL), 0o644],
        ["extra/run.sh", hash_bytes(b"#!/bin/sh\n"), 10, 0o755],
        ["model.pkl", hash_bytes(PICKLE), len(PICKLE), 0o644],
    ]
    # The tree is an object like any other, named by the hash the version records.
    assert hash_bytes(client.objects.read_bytes(mv.tree_hash)) == mv.tree_hash
    assert client.model_tree_rows(mv.tree_hash) == rows
    assert client.model_tree_rows("models:/wine-rf/1") == rows
    # Files the run logs later, even over the model's own, do not change version 1.
    client.log_artifacts(run_id, _model_folder(tmp_path, "v2", pickle=b"retrained"), "model")
    assert client.model_tree_rows(client.get_model_version("wine-rf", 1)) == rows
    mv2 = client.register_model(f"runs:/{run_id}/model", "wine-rf")
    assert mv2.version == 2 and mv2.tree_hash != mv.tree_hash
    assert [r[0] for r in client.model_tree_rows(mv2)] == [r[0] for r in rows]
    # The same folder registered twice is the same tree.
    assert client.register_model(f"runs:/{run_id}/model", "other").tree_hash == mv2.tree_hash
    history = client.get_model_history("wine-rf")
    assert [(e.action, e.version, e.actor) for e in reversed(history)] == [
        ("create_model", None, current_user()),
        ("create_version", 1, current_user()),
        ("create_version", 2, current_user()),
    ]


def test_register_model_under_a_nested_path(client, tmp_path):
    run_id = _run_with_model(client, tmp_path, "models/rf")
    mv = client.register_model(f"runs:/{run_id}/models/rf/", "wine-rf")
    assert (mv.artifact_path, mv.source) == ("models/rf", f"runs:/{run_id}/models/rf")
    assert [r[0] for r in client.model_tree_rows(mv)] == ["MLmodel", "extra/run.sh", "model.pkl"]


def test_register_model_needs_an_mlmodel_file(client, tmp_path):
    run_id = _run_with_model(client, tmp_path)
    for path in ("nothing-here", "model/extra", "notes.txt", "mode"):
        with pytest.raises(InvalidInput) as err:
            client.register_model(f"runs:/{run_id}/{path}", "wine-rf")
        assert err.value.message == f"run {run_id} has no model at {path!r}: no MLmodel file"
        assert "mt.log_model" in err.value.hint
        assert "(the run's artifacts: model, notes.txt)" in err.value.hint
    with pytest.raises(NotFound):
        client.get_registered_model("wine-rf")


def test_register_model_refuses_bad_uris_names_and_runs(client, tmp_path):
    run_id = _run_with_model(client, tmp_path)
    with pytest.raises(InvalidInput, match="takes the runs:/ URI") as err:
        client.register_model("models:/wine-rf/1", "copy")
    assert "runs:/<run_id>/<artifact_path>" in err.value.hint
    with pytest.raises(InvalidInput, match="not a model URI") as err:
        client.register_model(f"run:/{run_id}/model", "wine-rf")
    assert "runs:/RUN_ID/PATH" in err.value.hint
    with pytest.raises(InvalidValue, match="model name 'bad name'"):
        client.register_model(f"runs:/{run_id}/model", "bad name")
    with pytest.raises(NotFound, match="no run id starts with 'ffffffff'"):
        client.register_model("runs:/ffffffff/model", "wine-rf")
    assert client.search_registered_models() == []


def test_register_model_refuses_a_model_whose_files_are_gone(client, tmp_path):
    run_id = _run_with_model(client, tmp_path)
    client.objects.delete(hash_bytes(PICKLE))
    with pytest.raises(NotFound, match="1 of its 3 files are not in the object store") as err:
        client.register_model(f"runs:/{run_id}/model", "wine-rf")
    assert "log the model again" in err.value.hint
    assert client.search_registered_models() == []


def test_model_tree_rows_reports_a_missing_or_damaged_tree(client, tmp_path):
    mv = client.register_model(f"runs:/{_run_with_model(client, tmp_path)}/model", "wine-rf")
    path = client.objects.path_of(mv.tree_hash)
    good = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(good.replace(b"MLmodel", b"MLmodeX"))
    with pytest.raises(IntegrityError, match="file list of version 1 of wine-rf is damaged"):
        client.model_tree_rows(mv)
    client.objects.delete(mv.tree_hash)
    with pytest.raises(NotFound, match="file list of version 1 of wine-rf") as err:
        client.model_tree_rows(mv)
    assert "register the model again" in err.value.hint
    with pytest.raises(InvalidValue, match="tree hash"):
        client.model_tree_rows("not-a-hash")


def test_create_model_version_from_a_stored_tree(client, tmp_path):
    info = put_tree(client.objects, _model_folder(tmp_path))
    mv = client.create_model_version("wine-rf", "s3://elsewhere/model", tree_hash=info.hash)
    assert (mv.version, mv.tree_hash, mv.run_id, mv.source) == (
        1,
        info.hash,
        None,
        "s3://elsewhere/model",
    )
    with pytest.raises(InvalidInput, match="needs a tree_hash"):
        client.create_model_version("wine-rf", "s3://elsewhere/model")
    with pytest.raises(NotFound, match="not in the object store"):
        client.create_model_version("wine-rf", "s3://x", tree_hash="c" * 64)
    client.objects.delete(hash_bytes(PICKLE))
    with pytest.raises(NotFound, match="1 files of tree"):
        client.create_model_version("wine-rf", "s3://x", tree_hash=info.hash)
    # A runs:/ source is register_model.
    run_id = _run_with_model(client, tmp_path / "again")
    mv = client.create_model_version("wine-rf", f"runs:/{run_id}/model", description="d")
    assert (mv.version, mv.run_id, mv.description) == (2, run_id, "d")


def test_resolve_model_uri(client, tmp_path):
    run_id = _run_with_model(client, tmp_path)
    uri = f"runs:/{run_id}/model"
    v1, v2, v3 = (client.register_model(uri, "wine-rf") for _ in range(3))
    client.set_registered_model_alias("wine-rf", "champion", "2")
    client.transition_model_version_stage("wine-rf", 1, "production")
    resolve = client.resolve_model_uri

    def expected(mv: ModelVersion) -> ResolvedModel:
        return ResolvedModel(run_id, "model", mv.tree_hash, "wine-rf", mv.version)

    assert resolve("models:/wine-rf/1") == expected(v1)
    assert resolve("models:/wine-rf@champion") == expected(v2)
    assert resolve("models:/wine-rf/PRODUCTION") == expected(v1)
    assert resolve("models:/wine-rf/latest") == expected(v3)
    assert resolve(f"runs:/{run_id[:6]}/model") == ResolvedModel(run_id, "model", None)
    with pytest.raises(NotFound, match="wine-rf has no version in stage Staging") as err:
        resolve("models:/wine-rf/staging")
    assert "transition_model_version_stage" in err.value.hint
    with pytest.raises(NotFound, match="no alias 'prod'") as err:
        resolve("models:/wine-rf@prod")
    assert err.value.hint == "Its aliases: champion (version 2)."
    with pytest.raises(NotFound, match="version 7 of wine-rf"):
        resolve("models:/wine-rf/7")
    with pytest.raises(NotFound, match="'nope' does not exist"):
        resolve("models:/nope/1")
    client.delete_model_version("wine-rf", 3)
    with pytest.raises(InvalidState, match="version 3 of wine-rf is deleted"):
        resolve("models:/wine-rf/3")
    assert resolve("models:/wine-rf/latest").version == 2
    client.create_registered_model("empty")
    with pytest.raises(NotFound, match="empty has no versions"):
        resolve("models:/empty/latest")
    with pytest.raises(InvalidInput, match="not a model URI"):
        resolve("models:/wine-rf")


def test_registered_model_api(client):
    m = client.create_registered_model("wine-rf", {"team": "risk"}, "red wines")
    assert (m.name, m.tags, m.description) == ("wine-rf", {"team": "risk"}, "red wines")
    with pytest.raises(AlreadyExists):
        client.create_registered_model("wine-rf")
    client.create_registered_model("wine-lr")
    client.create_registered_model("beer")
    assert [m.name for m in client.search_registered_models("wine%")] == ["wine-lr", "wine-rf"]
    page = client.search_registered_models(max_results=2)
    assert len(page) == 2 and page.next_page_token
    assert client.update_registered_model("wine-rf", "new", comment="why").description == "new"
    client.set_registered_model_tag("wine-rf", "stars", 5)
    assert client.get_registered_model("wine-rf").tags == {"team": "risk", "stars": "5"}
    client.delete_registered_model_tag("wine-rf", "team")
    assert client.rename_registered_model("wine-rf", "red-wine").tags == {"stars": "5"}
    client.delete_registered_model("red-wine", comment="done")
    with pytest.raises(NotFound):
        client.get_registered_model("red-wine")
    history = client.get_model_history("red-wine")
    assert [e.action for e in history] == ["delete_model", "rename_model"]
    assert history[0].comment == "done" and history[0].actor == current_user()
    old = client.get_model_history("wine-rf")
    assert [e.action for e in old] == [
        "rename_model",
        "delete_model_tag",
        "set_model_tag",
        "update_model",
        "create_model",
    ]
    assert (old[3].before, old[3].after, old[3].comment) == ("red wines", "new", "why")


def test_version_alias_and_stage_api(client, tmp_path):
    run_id = _run_with_model(client, tmp_path)
    for _ in range(3):
        client.register_model(f"runs:/{run_id}/model", "wine-rf")
    assert client.update_model_version("wine-rf", "2", "tuned").description == "tuned"
    client.set_model_version_tag("wine-rf", 2, "validated", True)
    assert client.get_model_version("wine-rf", "2").tags == {"validated": "True"}
    client.delete_model_version_tag("wine-rf", 2, "validated")
    client.set_registered_model_alias("wine-rf", "champion", 2, comment="best AUC")
    assert client.get_model_version_by_alias("wine-rf", "champion").version == 2
    with pytest.raises(InvalidValue, match="reserved"):
        client.set_registered_model_alias("wine-rf", "latest", 2)
    client.transition_model_version_stage("wine-rf", 1, "Production")
    mv = client.transition_model_version_stage("wine-rf", 3, "production", True, "v3 wins")
    assert mv.stage == "Production"
    assert client.get_model_version("wine-rf", 1).stage == "Archived"
    assert [v.version for v in client.get_latest_versions("wine-rf", "Production")] == [3]
    with pytest.raises(InvalidInput, match="unknown model stage 'live'"):
        client.transition_model_version_stage("wine-rf", 1, "live")
    with pytest.raises(InvalidState, match="version 2 of wine-rf holds alias champion"):
        client.delete_model_version("wine-rf", 2)
    client.delete_registered_model_alias("wine-rf", "champion")
    client.delete_model_version("wine-rf", 2)
    assert [v.version for v in client.list_model_versions("wine-rf")] == [3, 1]
    assert [v.version for v in client.search_model_versions("wine-rf")] == [3, 1]
    assert len(client.list_model_versions("wine-rf", include_deleted=True)) == 3
    with pytest.raises(InvalidState, match="wine-rf is in use: version 3 is in Production"):
        client.delete_registered_model("wine-rf")
    history = client.get_model_history("wine-rf", version=3)
    assert [(e.action, e.before, e.after) for e in history] == [
        ("transition_stage", "None", "Production"),
        ("create_version", None, f"runs:/{run_id}/model"),
    ]
    client.delete_registered_model("wine-rf", force=True)
    assert client.search_registered_models() == []


def test_search_model_versions_by_run_and_tree(client, tmp_path):
    run_a = _run_with_model(client, tmp_path / "a")
    run_b = _run_with_model(client, tmp_path / "b", pickle=b"other")
    a1 = client.register_model(f"runs:/{run_a}/model", "wine-rf")
    client.register_model(f"runs:/{run_b}/model", "wine-rf")
    client.register_model(f"runs:/{run_a}/model", "beer")
    found = client.search_model_versions(run_id=run_a[:6])
    assert [(mv.name, mv.version) for mv in found] == [("beer", 1), ("wine-rf", 1)]
    found = client.search_model_versions("wine-rf", tree_hash=a1.tree_hash)
    assert [(mv.name, mv.version) for mv in found] == [("wine-rf", 1)]
    with pytest.raises(InvalidInput, match="needs a model name, a run id or a tree hash"):
        client.search_model_versions()


def test_the_client_mirrors_mlflow_method_names(client):
    names = [
        "create_registered_model", "get_registered_model", "search_registered_models",
        "update_registered_model", "rename_registered_model", "delete_registered_model",
        "set_registered_model_tag", "delete_registered_model_tag", "create_model_version",
        "get_model_version", "search_model_versions", "update_model_version",
        "delete_model_version", "set_model_version_tag", "delete_model_version_tag",
        "set_registered_model_alias", "delete_registered_model_alias",
        "get_model_version_by_alias", "transition_model_version_stage", "get_latest_versions",
        "register_model", "get_model_history", "list_model_versions", "model_tree_rows",
        "resolve_model_uri",
    ]  # fmt: skip
    for name in names:
        assert (getattr(client, name).__doc__ or "").strip(), name


@pytest.mark.parametrize("text", ["²", "٣", "1²", " ¹ "])
def test_check_version_refuses_digits_other_than_ascii(text: str) -> None:
    from mltrail.errors import InvalidValue
    from mltrail.validation import check_version

    with pytest.raises(InvalidValue, match="whole number"):
        check_version(text)
    assert check_version(" 12 ") == 12


def test_comments_longer_than_the_server_takes_are_refused(client, tmp_path):
    from mltrail.errors import InvalidValue
    from mltrail.validation import MAX_COMMENT_LENGTH

    run_id = _run_with_model(client, tmp_path)
    client.register_model(f"runs:/{run_id}/model", "wine")
    long = "x" * (MAX_COMMENT_LENGTH + 1)
    for change in (
        lambda: client.set_registered_model_alias("wine", "prod", 1, comment=long),
        lambda: client.delete_registered_model_alias("wine", "prod", comment=long),
        lambda: client.transition_model_version_stage("wine", 1, "Staging", comment=long),
        lambda: client.register_model(f"runs:/{run_id}/model", "wine", comment=long),
    ):
        with pytest.raises(InvalidValue, match="5000"):
            change()
    assert client.get_registered_model("wine").aliases == {}
    assert client.get_model_version("wine", 1).stage == "None"
    assert len(client.list_model_versions("wine")) == 1
    client.set_registered_model_alias("wine", "prod", 1, comment="x" * MAX_COMMENT_LENGTH)
