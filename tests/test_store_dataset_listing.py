"""list_datasets: every tracked dataset path, summarised, on every store (and its REST route)."""

from __future__ import annotations

import time

import pytest

from mltrail.entities import DatasetRef, DatasetSummary, ViewType
from mltrail.store import open_store

H1, H2, H3 = "1" * 64, "a" * 64, "b" * 64
CSV = DatasetRef("data/train.csv", H1, "file", 120, None, "training")
CSV2 = DatasetRef("data/train.csv", H3, "file", 130)
IMAGES = DatasetRef("data/images", H2, "dir", 4096, 20)


@pytest.fixture
def store(store_uri: str):
    s = open_store(store_uri)
    yield s
    s.close()


def _run(store, name: str, start: int, exp: str = "0") -> str:
    return store.create_run(exp, name, "alice", start).run_id


def _tick() -> None:
    # Uses are ordered by the millisecond they were logged; make "latest" unambiguous.
    time.sleep(0.005)


def test_list_datasets_summarises_each_path(store):
    assert store.list_datasets() == []
    exp = store.create_experiment("e")
    a = _run(store, "a", 1000)
    b = _run(store, "b", 2000, exp)
    c = _run(store, "c", 3000)
    store.log_run_datasets(a, "input", [CSV, IMAGES])
    _tick()
    store.log_run_datasets(b, "output", [CSV2])
    _tick()
    store.log_run_datasets(c, "input", [CSV2])
    store.log_run_datasets(c, "output", [CSV2])

    images, train = store.list_datasets()
    assert isinstance(train, DatasetSummary)
    assert (train.path, train.versions, train.runs, train.readers, train.writers) == (
        "data/train.csv",
        2,
        3,
        2,
        2,
    )
    assert train.latest == CSV2
    assert train.first_seen <= train.last_seen
    assert (images.path, images.versions, images.runs, images.readers, images.writers) == (
        "data/images",
        1,
        1,
        1,
        0,
    )
    assert images.latest == IMAGES
    assert images.first_seen == images.last_seen
    # JSON round trip, as the HTTP store needs it.
    assert DatasetSummary.from_dict(train.to_dict()) == train
    assert train.to_dict()["latest"]["hash"] == H3

    # Restricted to experiments: only their runs count.
    [only] = store.list_datasets([exp])
    assert (only.path, only.versions, only.runs, only.writers) == ("data/train.csv", 1, 1, 1)
    assert store.list_datasets([]) == []
    assert store.list_datasets(["999999", "not-an-id"]) == []


def test_deleted_runs_count_only_when_asked_for(store):
    keep = _run(store, "keep", 1000)
    gone = _run(store, "gone", 2000)
    store.log_run_datasets(keep, "input", [CSV])
    _tick()
    store.log_run_datasets(gone, "input", [CSV2, IMAGES])
    store.set_run_lifecycle(gone, "deleted")

    [train] = store.list_datasets()
    assert (train.versions, train.runs, train.latest) == (1, 1, CSV)
    everything = store.list_datasets(view=ViewType.ALL)
    assert [(d.path, d.versions, d.runs) for d in everything] == [
        ("data/images", 1, 1),
        ("data/train.csv", 2, 2),
    ]
    assert everything[1].latest == CSV2
    assert [d.path for d in store.list_datasets(view="deleted_only")] == [
        "data/images",
        "data/train.csv",
    ]


def test_the_route_leaves_out_experiments_the_caller_may_not_see(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from mltrail.server.app import ServerSettings, create_app

    uri = f"sqlite:///{tmp_path / 'auth.db'}"
    store = open_store(uri)
    secret = store.create_experiment("secret")
    store.log_run_datasets(_run(store, "s", 1000, secret), "input", [IMAGES])
    store.log_run_datasets(_run(store, "o", 2000), "input", [CSV])
    store.set_permission("bob", "experiment", secret, "none")
    _, bob = store.create_token("bob", "read")
    _, carol = store.create_token("carol", "read")
    app = create_app(ServerSettings(uri, str(tmp_path / "objects"), auth=True, access_log=False))
    try:
        with TestClient(app) as http:

            def paths(token: str, **params: object) -> list[str]:
                got = http.get(
                    "/api/v1/datasets",
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert got.status_code == 200, got.text
                return [d["path"] for d in got.json()["datasets"]]

            assert paths(carol) == ["data/images", "data/train.csv"]
            assert paths(bob) == ["data/train.csv"]
            assert paths(bob, experiment_id=[secret]) == []
            assert paths(carol, experiment_id=[secret]) == ["data/images"]
            assert http.get("/api/v1/datasets").status_code == 401
    finally:
        store.close()
        app.state.mltrail.close()
