"""Dataset versions as run inputs and outputs in the SQL store, and the migration that adds them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mltrail.entities import DatasetRef, DatasetUse, RunBatch, RunDataset, ViewType
from mltrail.errors import InvalidInput, InvalidState, InvalidValue, NotFound
from mltrail.store import migrate, open_store
from mltrail.store.engine import make_engine
from mltrail.store.sql import SqlStore

H1, H2, H3 = "1" * 64, "a" * 64, "b" * 64
CSV = DatasetRef("data/train.csv", H1, "file", 120, None, "training")
IMAGES = DatasetRef("data/images", H2, "dir", 4096, 20)


@pytest.fixture
def store(store_uri: str):
    s = open_store(store_uri)
    yield s
    s.close()


def _run(store: SqlStore, name: str, start: int, exp: str = "0") -> str:
    return store.create_run(exp, name, "alice", start).run_id


def test_log_and_get_run_datasets(store):
    run = _run(store, "r", 1000)
    store.log_run_datasets(run, "input", [CSV, IMAGES])
    store.log_run_datasets(run, "output", [DatasetRef("models/m", H3, "dir", 10, 2)])
    got = store.get_run_datasets(run)
    assert [(d.direction, d.dataset) for d in got] == [
        ("input", IMAGES),
        ("input", CSV),
        ("output", DatasetRef("models/m", H3, "dir", 10, 2)),
    ]
    assert all(d.timestamp > 0 for d in got)
    assert got[1].to_dict() == {
        "direction": "input",
        "path": "data/train.csv",
        "hash": H1,
        "kind": "file",
        "size": 120,
        "nfiles": None,
        "context": "training",
        "timestamp": got[1].timestamp,
    }
    # JSON round trips, as the HTTP store will need them.
    assert DatasetRef.from_dict(CSV.to_dict()) == CSV
    assert [RunDataset.from_dict(d.to_dict()) for d in got] == got


def test_logging_the_same_version_again_is_a_no_op(store):
    run = _run(store, "r", 1000)
    store.log_run_datasets(run, "input", [CSV])
    first = store.get_run_datasets(run)
    store.log_run_datasets(run, "input", [CSV, CSV])
    # Without a context, the earlier context stays.
    store.log_run_datasets(run, "input", [DatasetRef(CSV.path, H1, "file", 120)])
    assert store.get_run_datasets(run) == first
    # A new context replaces the old one; the row is still one.
    store.log_run_datasets(run, "input", [DatasetRef(CSV.path, H1, "file", 120, None, "eval")])
    [again] = store.get_run_datasets(run)
    assert again.dataset.context == "eval"
    assert again.timestamp == first[0].timestamp
    # Another version of the same path, and the same version as an output, are new rows.
    store.log_run_datasets(run, "input", [DatasetRef(CSV.path, H3, "file", 7)])
    store.log_run_datasets(run, "output", [CSV])
    assert [(d.direction, d.dataset.hash) for d in store.get_run_datasets(run)] == [
        ("input", H1),
        ("input", H3),
        ("output", H1),
    ]


def test_finished_deleted_and_unknown_runs_are_refused(store):
    done = _run(store, "done", 1000)
    store.update_run(done, status="FINISHED", end_time=2000)
    with pytest.raises(InvalidState, match=f"run '{done}' is FINISHED") as err:
        store.log_run_datasets(done, "input", [CSV])
    assert "start_run(run_id=" in (err.value.hint or "")
    gone = _run(store, "gone", 1000)
    store.set_run_lifecycle(gone, "deleted")
    with pytest.raises(InvalidState, match="deleted"):
        store.log_run_datasets(gone, "input", [CSV])
    with pytest.raises(NotFound, match="'f00d' does not exist"):
        store.log_run_datasets("f00d", "input", [CSV])
    with pytest.raises(NotFound):
        store.get_run_datasets("f00d")
    assert store.get_run_datasets(done) == []


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (DatasetRef("/abs/x.csv", H1, "file", 1), "must be relative"),
        (DatasetRef("data/../x.csv", H1, "file", 1), "'..' segments"),
        (DatasetRef("data\\x.csv", H1, "file", 1), "'/' separators"),
        (DatasetRef("", H1, "file", 1), "is empty"),
        (DatasetRef("x.csv", "ABC", "file", 1), "hash 'ABC' is not 64 lowercase hex"),
        (DatasetRef("x.csv", H1, "link", 1), "kind must be 'file' or 'dir', got 'link'"),
        (DatasetRef("x.csv", H1, "file", -1), "size must be a whole number"),
        (DatasetRef("x", H1, "dir", 1, None), "a dir needs nfiles"),
        (DatasetRef("x", H1, "file", 1, 3), "a file has no nfiles"),
        (DatasetRef("x", H1, "file", 1, None, "two\nlines"), "one line"),
        (DatasetRef("x", H1, "file", 1, None, "x" * 251), "at most 250"),
    ],
)
def test_malformed_refs_are_refused(store, ref, message):
    run = _run(store, "r", 1000)
    with pytest.raises(InvalidValue, match=message):
        store.log_run_datasets(run, "input", [ref])
    assert store.get_run_datasets(run) == []


def test_unknown_direction_is_refused(store):
    run = _run(store, "r", 1000)
    with pytest.raises(InvalidValue, match="'input' or 'output', got 'inputs'"):
        store.log_run_datasets(run, "inputs", [CSV])


def test_find_dataset_uses(store):
    exp = store.create_experiment("e")
    old = _run(store, "old", 1000)
    new = _run(store, "new", 3000, exp)
    mid = _run(store, "mid", 2000)
    gone = _run(store, "gone", 4000)
    store.log_run_datasets(old, "input", [CSV, IMAGES])
    store.log_run_datasets(new, "input", [CSV])
    store.log_run_datasets(mid, "output", [DatasetRef(CSV.path, H3, "file", 9)])
    store.log_run_datasets(gone, "input", [CSV])
    store.set_run_lifecycle(gone, "deleted")

    uses = store.find_dataset_uses(path="data/train.csv")
    assert [(u.run_name, u.direction, u.dataset.hash) for u in uses] == [
        ("new", "input", H1),
        ("mid", "output", H3),
        ("old", "input", H1),
    ]
    first = uses[0]
    assert (first.run_id, first.experiment_id, first.status, first.start_time) == (
        new,
        exp,
        "RUNNING",
        3000,
    )
    assert first.dataset == CSV
    assert first.to_dict()["dataset"]["context"] == "training"
    assert DatasetUse.from_dict(first.to_dict()) == first
    assert [u.run_name for u in store.find_dataset_uses(hash=H1)] == ["new", "old"]
    assert [u.run_name for u in store.find_dataset_uses(path="data/train.csv", hash=H3)] == ["mid"]
    assert [u.run_name for u in store.find_dataset_uses(hash=H2)] == ["old"]
    assert store.find_dataset_uses(path="data/nothing") == []
    # Deleted runs only on request.
    everything = store.find_dataset_uses(hash=H1, view=ViewType.ALL)
    assert [(u.run_name, u.lifecycle_stage) for u in everything] == [
        ("gone", "deleted"),
        ("new", "active"),
        ("old", "active"),
    ]
    assert [u.run_name for u in store.find_dataset_uses(hash=H1, view="deleted_only")] == ["gone"]
    with pytest.raises(InvalidInput, match="needs a dataset path, a version hash or both"):
        store.find_dataset_uses()


def test_deleting_an_experiment_hides_its_uses(store):
    exp = store.create_experiment("e")
    run = _run(store, "r", 1000, exp)
    store.log_run_datasets(run, "input", [CSV])
    store.set_experiment_lifecycle(exp, "deleted")
    assert store.find_dataset_uses(path=CSV.path) == []
    store.set_experiment_lifecycle(exp, "active")
    assert [u.run_id for u in store.find_dataset_uses(path=CSV.path)] == [run]


# -- migration 0001 → 0002 -----------------------------------------------------------------------


@pytest.mark.sql_only
def test_a_0001_store_upgrades_with_its_data(store_uri):
    engine = make_engine(store_uri)
    with engine.connect() as conn, conn.begin():
        migrate._upgrade(conn, "0001")
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == "0001"
        assert not sa.inspect(conn).has_table("run_datasets")
    # Data written by the 0001 schema, as an older mltrail would have.
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO runs (run_pk, run_id, experiment_id, name, status, user_id, start_time, "
            "lifecycle_stage) VALUES (7, 'abcd0000000000000000000000000001', 0, 'old-run', "
            "'RUNNING', 'alice', 1000, 'active')"
        )
        conn.exec_driver_sql("INSERT INTO params (run_pk, key, value) VALUES (7, 'lr', '0.1')")
        conn.exec_driver_sql(
            "INSERT INTO latest_metrics (run_pk, key, value, step, timestamp) "
            "VALUES (7, 'loss', 0.5, 3, 1100)"
        )
    engine.dispose()

    store = SqlStore(store_uri)
    try:
        with store.engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.HEAD
        run = store.get_run("abcd0000000000000000000000000001")
        assert (run.info.run_name, run.data.params, run.data.metrics) == (
            "old-run",
            {"lr": "0.1"},
            {"loss": 0.5},
        )
        assert store.get_run_datasets(run.run_id) == []
        store.log_run_datasets(run.run_id, "input", [CSV])
        store.write_batches([RunBatch(run.run_id, params={"epochs": "3"})])
        assert [u.run_name for u in store.find_dataset_uses(path=CSV.path)] == ["old-run"]
        assert store.get_run(run.run_id).data.params == {"lr": "0.1", "epochs": "3"}
    finally:
        store.close()
