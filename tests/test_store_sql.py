"""The SQL store on SQLite and PostgreSQL: experiments, runs, batches, search plumbing, errors."""

from __future__ import annotations

import math

import pytest

from mltrail.entities import FileInfo, Metric, RunBatch, ViewType
from mltrail.errors import AlreadyExists, InvalidInput, InvalidState, NotFound, ParamChanged
from mltrail.store import open_store
from mltrail.store.sql import SqlStore, decode_page_token, encode_page_token


@pytest.fixture
def store(store_uri: str):
    s = open_store(store_uri)
    yield s
    s.close()


def _run(store: SqlStore, exp: str = "0", name: str = "r", start: int = 1000):
    return store.create_run(exp, name, "alice", start)


def test_new_store_has_default_experiment(store):
    exps = store.list_experiments()
    assert [(e.experiment_id, e.name) for e in exps] == [("0", "Default")]


def test_experiment_lifecycle(store):
    exp_id = store.create_experiment("wine", {"team": "risk"})
    assert store.get_experiment(exp_id).tags == {"team": "risk"}
    assert store.get_experiment_by_name("wine").experiment_id == exp_id
    assert store.get_experiment_by_name("nope") is None
    with pytest.raises(AlreadyExists, match="'wine' already exists"):
        store.create_experiment("wine")
    run = _run(store, exp_id)
    store.set_experiment_lifecycle(exp_id, "deleted")
    assert store.get_run_info(run.run_id).lifecycle_stage == "deleted"
    assert [e.name for e in store.list_experiments(ViewType.DELETED_ONLY)] == ["wine"]
    with pytest.raises(InvalidState, match="deleted"):
        _run(store, exp_id)
    with pytest.raises(AlreadyExists) as err:
        store.create_experiment("wine")
    assert "restore" in str(err.value)
    store.set_experiment_lifecycle(exp_id, "active")
    assert store.get_run_info(run.run_id).lifecycle_stage == "active"
    store.rename_experiment(exp_id, "wine2")
    assert store.get_experiment(exp_id).name == "wine2"
    store.set_experiment_tag(exp_id, "team", "ops")
    assert store.get_experiment(exp_id).tags == {"team": "ops"}


def test_experiment_restore_keeps_runs_deleted_before(store):
    exp_id = store.create_experiment("e")
    early = _run(store, exp_id)
    kept = _run(store, exp_id)
    store.set_run_lifecycle(early.run_id, "deleted")
    import time

    time.sleep(0.01)
    store.set_experiment_lifecycle(exp_id, "deleted")
    store.set_experiment_lifecycle(exp_id, "active")
    assert store.get_run_info(early.run_id).lifecycle_stage == "deleted"
    assert store.get_run_info(kept.run_id).lifecycle_stage == "active"


def test_default_experiment_cannot_be_deleted(store):
    with pytest.raises(InvalidState, match="Default"):
        store.set_experiment_lifecycle("0", "deleted")


@pytest.mark.parametrize("bad", ["42", "abc", ""])
def test_unknown_experiment(store, bad):
    with pytest.raises(NotFound, match="does not exist"):
        store.get_experiment(bad)
    with pytest.raises(NotFound):
        _run(store, bad)


def test_batches_latest_metric_and_nan_inf(store):
    run = _run(store)
    errors = store.write_batches(
        [
            RunBatch(
                run.run_id,
                metrics=[
                    Metric("loss", 0.5, 10, 1),
                    Metric("loss", 0.4, 11, 2),
                    Metric("loss", 9.9, 50, 0),  # later time, lower step: not the latest
                    Metric("nan", math.nan, 1, 0),
                    Metric("inf", math.inf, 1, 0),
                    Metric("ninf", -math.inf, 1, 0),
                ],
                params={"lr": "0.1"},
                tags={"t": "1"},
            )
        ]
    )
    assert errors == {}
    # A second batch with an older step must not replace the latest value.
    store.write_batches([RunBatch(run.run_id, metrics=[Metric("loss", 7.0, 99, 1)])])
    data = store.get_run(run.run_id).data
    assert data.metrics["loss"] == 0.4
    assert math.isnan(data.metrics["nan"])
    assert data.metrics["inf"] == math.inf and data.metrics["ninf"] == -math.inf
    assert data.params == {"lr": "0.1"} and data.tags == {"t": "1"}
    history = store.get_metric_history(run.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 9.9), (1, 0.5), (1, 7.0), (2, 0.4)]
    assert math.isnan(store.get_metric_history(run.run_id, "nan")[0].value)


def test_params_are_immutable(store):
    run = _run(store)
    assert store.write_batches([RunBatch(run.run_id, params={"a": "1"})]) == {}
    assert store.write_batches([RunBatch(run.run_id, params={"a": "1"})]) == {}
    errors = store.write_batches([RunBatch(run.run_id, params={"a": "2", "b": "3"})])
    assert isinstance(errors[run.run_id], ParamChanged)
    assert "'1'" in str(errors[run.run_id]) and "'2'" in str(errors[run.run_id])
    # Nothing of the rejected batch was written.
    assert store.get_run(run.run_id).data.params == {"a": "1"}


def test_batch_errors_do_not_block_other_runs(store):
    good, finished = _run(store), _run(store)
    store.update_run(finished.run_id, status="FINISHED", end_time=2000)
    errors = store.write_batches(
        [
            RunBatch(finished.run_id, metrics=[Metric("x", 1.0, 1, 0)]),
            RunBatch("f" * 32, metrics=[Metric("x", 1.0, 1, 0)]),
            RunBatch(good.run_id, metrics=[Metric("x", 1.0, 1, 0)]),
        ]
    )
    assert isinstance(errors[finished.run_id], InvalidState)
    assert isinstance(errors["f" * 32], NotFound)
    assert good.run_id not in errors
    assert store.get_run(good.run_id).data.metrics == {"x": 1.0}


def test_deleted_run_takes_no_data_and_restores(store):
    run = _run(store)
    store.set_run_lifecycle(run.run_id, "deleted")
    errors = store.write_batches([RunBatch(run.run_id, tags={"a": "b"})])
    assert "deleted" in str(errors[run.run_id])
    with pytest.raises(InvalidState, match="already deleted"):
        store.set_run_lifecycle(run.run_id, "deleted")
    store.set_run_lifecycle(run.run_id, "active")
    assert store.write_batches([RunBatch(run.run_id, tags={"a": "b"})]) == {}


def test_unknown_run(store):
    with pytest.raises(NotFound, match="'nope' does not exist"):
        store.get_run("nope")
    with pytest.raises(NotFound):
        store.get_metric_history("nope", "x")


def test_tags_upsert_and_delete(store):
    run = _run(store)
    store.write_batches([RunBatch(run.run_id, tags={"a": "1"})])
    store.write_batches([RunBatch(run.run_id, tags={"a": "2"})])
    assert store.get_run(run.run_id).data.tags == {"a": "2"}
    store.delete_tag(run.run_id, "a")
    with pytest.raises(NotFound):
        store.delete_tag(run.run_id, "a")


def test_artifacts_listing(store):
    run = _run(store)
    h = "a" * 64
    store.add_artifacts(
        run.run_id,
        [FileInfo("model/a.pkl", h, 3), FileInfo("model/b.txt", h, 4), FileInfo("x", h, 1)],
    )
    store.add_artifacts(run.run_id, [FileInfo("x", "b" * 64, 2)])
    assert [f.path for f in store.list_artifacts(run.run_id)] == ["model/a.pkl", "model/b.txt", "x"]
    assert [f.path for f in store.list_artifacts(run.run_id, "model")] == [
        "model/a.pkl",
        "model/b.txt",
    ]
    assert store.list_artifacts(run.run_id, "x")[0].hash == "b" * 64
    assert store.list_artifacts(run.run_id, "mod") == []


def test_search_pages_and_order(store):
    runs = [_run(store, start=1000 + i) for i in range(7)]
    page = store.search_runs(["0"], max_results=3)
    assert [r.run_id for r in page] == [r.run_id for r in reversed(runs)][:3]
    seen = list(page)
    while page.next_page_token:
        page = store.search_runs(["0"], max_results=3, page_token=page.next_page_token)
        seen.extend(page)
    assert len(seen) == 7 and len({r.run_id for r in seen}) == 7


@pytest.mark.parametrize("token", ["garbage", encode_page_token(-1), "eyJ4IjogMX0="])
def test_bad_page_token(store, token):
    with pytest.raises(InvalidInput, match="page token"):
        store.search_runs(["0"], page_token=token)


def test_page_token_roundtrip():
    assert decode_page_token(encode_page_token(1234)) == 1234
    assert decode_page_token(None) == 0


@pytest.mark.parametrize("n", [0, 50_001])
def test_max_results_bounds(store, n):
    with pytest.raises(InvalidInput, match="max_results"):
        store.search_runs(["0"], max_results=n)


def test_summaries_and_prefix(store):
    exp = store.create_experiment("e")
    a = _run(store, exp, start=5)
    _run(store, exp, start=9)
    assert store.experiment_summaries([exp, "0"]) == {exp: (2, 9), "0": (0, 0)}
    assert store.match_run_ids(a.run_id[:6]) == [a.run_id]


# -- metric_arrays: SQLite's reduction of a long series ------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    yield s
    s.close()


def _reduced(store: SqlStore, points: list[Metric], buckets: int):
    run_id = _run(store).info.run_id
    store.write_batches([RunBatch(run_id, metrics=points)])
    return store.metric_arrays(run_id, "m", buckets=buckets)


def test_metric_arrays_buckets_by_position_when_steps_are_uneven(sqlite_store):
    import numpy as np

    from mltrail.ui.downsample import keep_indices

    # 100,000 steps 0..99,999 and one at 10^12: equal step ranges would put all but one point
    # in the first bucket and keep 3 or 4 points.
    values = [math.cos(i / 500) for i in range(100_000)] + [3.0]
    values[4321] = -7.0
    steps = [*range(100_000), 10**12]
    got = _reduced(
        sqlite_store, [Metric("m", v, 0, s) for v, s in zip(values, steps, strict=True)], 999
    )
    assert got.total == 100_001
    assert 999 <= len(got.steps) <= 2 * 999 + 2
    assert got.steps[0] == 0 and got.steps[-1] == 10**12
    assert min(got.values) == -7.0 and max(got.values) == 3.0
    # The same points the numpy path keeps (equal buckets of positions, min and max of each).
    keep = keep_indices(np.asarray(values), 2 * 999 + 2)
    assert got.steps == [steps[i] for i in keep]


def test_metric_arrays_split_one_step_by_timestamp(sqlite_store):
    # Every point at step 0 (a metric logged without steps): buckets follow the timestamps.
    n = 20_000
    values = [math.sin(i / 100) for i in range(n)]
    values[12_345] = 5.0
    got = _reduced(sqlite_store, [Metric("m", v, 1000 + i, 0) for i, v in enumerate(values)], 100)
    assert got.total == n
    assert 100 <= len(got.steps) <= 2 * 100 + 2
    assert got.timestamps[0] == 1000 and got.timestamps[-1] == 1000 + n - 1
    assert got.timestamps == sorted(got.timestamps)
    assert max(got.values) == 5.0 and got.timestamps[got.values.index(5.0)] == 1000 + 12_345
