"""Per-experiment permissions hold on the side routes: objects by hash, listings, references.

Each test is one leak found by trying the server as a user with no access to an experiment
(issue 21, item 1): they must not reach a hidden run through its objects, its id, its counts or a
write that names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from mltrail.entities import DatasetRef, FileInfo
from mltrail.objects.tree import Tree, TreeEntry
from mltrail.server.app import ServerSettings, create_app
from mltrail.store import TrackingStore, open_store

API = "/api/v1"


@dataclass
class World:
    http: TestClient
    store: TrackingStore
    secret: str  # an experiment bob and wanda may not see
    mine: str  # one they may write to
    hidden_run: str
    own_run: str
    artifact: str  # an object only the hidden run refers to
    data_file: str  # a file inside a tree only the hidden run's dataset refers to
    data_tree: str
    pushed: str  # an object nothing refers to (pushed with `mltrail data push`)
    bob: dict[str, str]  # role read, none on secret
    wanda: dict[str, str]  # role write, none on secret
    admin: dict[str, str]


def _headers(store: TrackingStore, user: str, role: str) -> dict[str, str]:
    _, token = store.create_token(user, role)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    uri = f"sqlite:///{tmp_path / 'access.db'}"
    store = open_store(uri)
    settings = ServerSettings(uri, str(tmp_path / "objects"), auth=True, access_log=False)
    app = create_app(settings)
    objects = app.state.mltrail.objects
    secret = store.create_experiment("secret")
    mine = store.create_experiment("mine")
    hidden = store.create_run(secret, "hidden", "alice", 1, None, {}).info.run_id
    own = store.create_run(mine, "own", "wanda", 1, None, {}).info.run_id
    artifact = objects.put_bytes(b"the secret weights").hash
    store.add_artifacts(hidden, [FileInfo("model/MLmodel", artifact, 18, 0o644)])
    data_file = objects.put_bytes(b"secret,rows\n1,2\n").hash
    tree = Tree.from_entries([TreeEntry("rows.csv", data_file, 16, 0o644)])
    data_tree = objects.put_bytes(tree.to_bytes()).hash
    store.log_run_datasets(hidden, "input", [DatasetRef("data/secret", data_tree, "dir", 16, 1)])
    pushed = objects.put_bytes(b"pushed by a writer, referenced by nothing").hash
    for user in ("bob", "wanda"):
        store.set_permission(user, "experiment", secret, "none")
    with TestClient(app) as http:
        yield World(
            http,
            store,
            secret,
            mine,
            hidden,
            own,
            artifact,
            data_file,
            data_tree,
            pushed,
            _headers(store, "bob", "read"),
            _headers(store, "wanda", "write"),
            _headers(store, "root", "admin"),
        )
    store.close()
    app.state.mltrail.close()


def test_a_hidden_runs_objects_cannot_be_read_by_hash(world: World):
    for who in (world.bob, world.wanda):
        for h in (world.artifact, world.data_file, world.data_tree):
            got = world.http.get(f"{API}/objects/{h}", headers=who)
            assert got.status_code == 403, got.text
            assert "may not read object" in got.json()["message"]
            assert world.http.head(f"{API}/objects/{h}", headers=who).status_code == 403
    for h in (world.artifact, world.data_file, world.data_tree):
        got = world.http.get(f"{API}/objects/{h}", headers=world.admin)
        assert got.status_code == 200


def test_an_object_nothing_refers_to_is_readable_with_the_read_role(world: World):
    # What `mltrail data push` sent: its pusher (and any reader) can fetch it back.
    for who in (world.bob, world.wanda, world.admin):
        got = world.http.get(f"{API}/objects/{world.pushed}", headers=who)
        assert got.status_code == 200 and got.content.startswith(b"pushed by")


def test_an_object_is_readable_through_a_run_the_caller_may_read(world: World):
    world.store.add_artifacts(world.own_run, [FileInfo("copy", world.artifact, 18, 0o644)])
    assert world.http.get(f"{API}/objects/{world.artifact}", headers=world.bob).status_code == 200


def test_referenced_objects_lists_only_what_the_caller_may_read(world: World):
    got = world.http.get(f"{API}/objects-referenced", headers=world.bob).json()
    assert world.artifact not in got["artifacts"] and world.data_tree not in got["trees"]
    everything = world.http.get(f"{API}/objects-referenced", headers=world.admin).json()
    assert world.artifact in everything["artifacts"] and world.data_tree in everything["trees"]


def test_run_match_hides_runs_of_hidden_experiments(world: World):
    prefix = world.hidden_run[:8]
    got = world.http.get(f"{API}/runs/match", params={"prefix": prefix}, headers=world.bob)
    assert got.status_code == 200 and got.json()["run_ids"] == []
    got = world.http.get(f"{API}/runs/match", params={"prefix": prefix}, headers=world.admin)
    assert got.json()["run_ids"] == [world.hidden_run]


def test_dataset_uses_hide_runs_of_hidden_experiments(world: World):
    for params in ({"path": "data/secret"}, {"hash": world.data_tree}):
        got = world.http.get(f"{API}/datasets/uses", params=params, headers=world.bob)
        assert got.status_code == 200 and got.json()["uses"] == []
        got = world.http.get(f"{API}/datasets/uses", params=params, headers=world.admin)
        assert [u["run_id"] for u in got.json()["uses"]] == [world.hidden_run]


def test_summaries_leave_out_hidden_experiments(world: World):
    body = {"experiment_ids": [world.secret, world.mine]}
    got = world.http.post(f"{API}/experiments/summaries", json=body, headers=world.bob).json()
    assert set(got["summaries"]) == {world.mine}
    got = world.http.post(f"{API}/experiments/summaries", json=body, headers=world.admin).json()
    assert got["summaries"][world.secret]["runs"] == 1


def test_registering_a_version_from_a_hidden_run_is_refused(world: World):
    body = {
        "source": f"runs:/{world.hidden_run}/model",
        "run_id": world.hidden_run,
        "tree_hash": world.data_tree,
    }
    got = world.http.post(f"{API}/models/stolen/versions", json=body, headers=world.wanda)
    assert got.status_code == 403, got.text
    # Naming a hidden tree from no run at all is refused too.
    del body["run_id"]
    body["source"] = "s3://somewhere/model"
    got = world.http.post(f"{API}/models/stolen/versions", json=body, headers=world.wanda)
    assert got.status_code == 403, got.text
    assert world.http.get(f"{API}/models/stolen", headers=world.admin).status_code == 404


def test_registering_through_mlflow_from_a_hidden_run_is_refused(world: World):
    mlflow = "/api/2.0/mlflow"
    assert (
        world.http.post(
            f"{mlflow}/registered-models/create", json={"name": "stolen"}, headers=world.wanda
        ).status_code
        == 200
    )
    for body in (
        {"name": "stolen", "source": f"runs:/{world.hidden_run}/model"},
        {"name": "stolen", "source": "models:/stolen/1", "run_id": world.hidden_run},
    ):
        got = world.http.post(f"{mlflow}/model-versions/create", json=body, headers=world.wanda)
        assert got.status_code in (403, 404), got.text
        assert world.hidden_run not in got.text or got.status_code == 403


def test_a_child_run_under_a_hidden_parent_is_refused(world: World):
    body = {
        "experiment_id": world.mine,
        "run_name": "child",
        "start_time": 1,
        "parent_run_id": world.hidden_run,
    }
    got = world.http.post(f"{API}/runs", json=body, headers=world.wanda)
    assert got.status_code == 403, got.text
    body["parent_run_id"] = world.own_run
    assert world.http.post(f"{API}/runs", json=body, headers=world.wanda).status_code == 201


def test_a_run_cannot_claim_a_hidden_object_as_its_own(world: World):
    own = world.own_run
    files = {"files": [{"path": "x", "hash": world.artifact, "size": 18, "mode": 0o644}]}
    got = world.http.post(f"{API}/runs/{own}/artifacts", json=files, headers=world.wanda)
    assert got.status_code == 403, got.text
    dataset = {
        "direction": "input",
        "datasets": [
            {"path": "d", "hash": world.data_tree, "kind": "dir", "size": 16, "nfiles": 1}
        ],
    }
    got = world.http.post(f"{API}/runs/{own}/datasets", json=dataset, headers=world.wanda)
    assert got.status_code == 403, got.text
    # Still hidden: the refused writes recorded nothing.
    assert world.http.get(f"{API}/objects/{world.artifact}", headers=world.wanda).status_code == 403
    # Objects nothing refers to can be recorded (the usual upload-then-record).
    files["files"][0]["hash"] = world.pushed
    got = world.http.post(f"{API}/runs/{own}/artifacts", json=files, headers=world.wanda)
    assert got.status_code == 204, got.text


def test_presigned_reads_follow_the_same_rule(world: World):
    body = {"hashes": [world.artifact], "method": "GET"}
    got = world.http.post(f"{API}/objects/presign", json=body, headers=world.bob)
    assert got.status_code == 403, got.text


def test_a_run_cannot_link_a_hidden_logged_model(world: World):
    hidden = world.store.create_logged_model(world.secret, "secret-model").model_id
    mlflow = "/api/2.0/mlflow"
    for path, body in (
        ("runs/outputs", {"run_id": world.own_run, "models": [{"model_id": hidden, "step": 0}]}),
        ("runs/log-inputs", {"run_id": world.own_run, "models": [{"model_id": hidden}]}),
    ):
        got = world.http.post(f"{mlflow}/{path}", json=body, headers=world.wanda)
        assert got.status_code == 403, (path, got.text)
    body = {"direction": "output", "models": [{"model_id": hidden, "step": 0}]}
    got = world.http.post(f"{API}/runs/{world.own_run}/models", json=body, headers=world.wanda)
    assert got.status_code == 403, got.text
    links = world.http.get(f"{API}/runs/{world.own_run}/links", headers=world.admin).json()
    assert hidden not in str(links)


def test_model_trees_and_versions_leave_out_hidden_models(world: World):
    tree = world.data_tree  # any tree: a version of a model bob may not see names it
    world.store.create_registered_model("secret-model", None, None, "root")
    world.store.create_model_version("secret-model", "s3://x", None, None, tree, None, None, "root")
    world.store.set_permission("bob", "model", "secret-model", "none")
    from mltrail.server import auth

    auth.forget_tokens(world.http.app.state.mltrail)  # type: ignore[attr-defined]
    trees = world.http.get(f"{API}/model-trees", headers=world.bob).json()["tree_hashes"]
    assert tree not in trees
    assert tree in world.http.get(f"{API}/model-trees", headers=world.admin).json()["tree_hashes"]
    found = world.http.get(f"{API}/model-versions", params={"tree_hash": tree}, headers=world.bob)
    assert found.json()["versions"] == []
