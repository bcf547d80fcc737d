"""Min/max-per-bucket downsampling, and the store's metric_arrays fast path that feeds it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")

from mltrail.entities import Metric, RunBatch  # noqa: E402
from mltrail.ui.downsample import DEFAULT_POINTS, downsample, keep_indices  # noqa: E402


def test_fewer_points_than_the_budget_come_back_whole() -> None:
    for n in (0, 1, 2, 5, DEFAULT_POINTS):
        values = np.arange(n, dtype=float)
        assert keep_indices(values).tolist() == list(range(n))
    x, y = downsample(np.arange(3), np.array([3.0, 1.0, 2.0]), points=10)
    assert x.tolist() == [0, 1, 2] and y.tolist() == [3.0, 1.0, 2.0]


@pytest.mark.parametrize("n", [2001, 2002, 4999, 10_007, 123_457])
@pytest.mark.parametrize("points", [4, 5, 100, 2000])
def test_budget_ends_and_extremes_are_kept(n: int, points: int) -> None:
    rng = np.random.default_rng(n + points)
    values = rng.normal(size=n).cumsum()
    keep = keep_indices(values, points)
    assert len(keep) <= points
    assert keep[0] == 0 and keep[-1] == n - 1
    assert np.all(np.diff(keep) > 0)  # ascending, no repeats
    assert values.argmin() in keep and values.argmax() in keep


def test_every_bucket_keeps_its_spike() -> None:
    values = np.zeros(100_000)
    spikes = [7, 25_000, 50_001, 99_990]
    values[spikes] = [5.0, -3.0, 8.0, 1.0]
    keep = keep_indices(values, 1000)
    for i in spikes:
        assert i in keep


def test_nan_never_wins_and_all_nan_buckets_leave_a_gap() -> None:
    values = np.linspace(0, 1, 10_000)
    values[1::3] = np.nan
    values[5000:6000] = np.nan  # whole buckets of NaN
    values[4321] = -7.0
    keep = keep_indices(values, 100)
    kept = values[keep]
    assert -7.0 in kept and 1.0 in kept
    assert np.isnan(kept).any()  # the NaN stretch shows as a gap
    inner = keep[(keep > 0) & (keep < 9999)]
    # Outside the all-NaN stretch, no NaN is chosen while a bucket has numbers.
    assert not np.isnan(values[inner[(inner < 5000) | (inner >= 6000)]]).any()


def test_infinities_are_extremes_like_any_value() -> None:
    values = np.sin(np.arange(50_000) / 100.0)
    values[1234] = np.inf
    values[40_000] = -np.inf
    keep = keep_indices(values, 200)
    assert 1234 in keep and 40_000 in keep


def test_a_constant_series_stays_flat_and_small() -> None:
    values = np.full(1_000_000, 3.5)
    keep = keep_indices(values, 2000)
    assert len(keep) <= 2000
    assert keep[0] == 0 and keep[-1] == 999_999
    assert np.all(values[keep] == 3.5)


def test_a_million_points_keep_their_extremes() -> None:
    x = np.arange(1_000_000)
    y = np.sin(x / 1000.0) + np.random.default_rng(1).normal(scale=0.1, size=x.size)
    dx, dy = downsample(x, y)
    assert len(dx) <= DEFAULT_POINTS
    assert dy.min() == y.min() and dy.max() == y.max()


# -- the store's fast path -----------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path):
    from mltrail.store import open_store

    opened = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    yield opened
    opened.close()


def _run(store) -> str:
    exp = store.create_experiment("e")
    return store.create_run(exp, "r", "u", 0).info.run_id


def test_metric_arrays_match_the_history(store) -> None:
    run_id = _run(store)
    values = [0.5, math.nan, math.inf, -1.0, 2.0]
    points = [Metric("m", v, 10 - i, i // 2) for i, v in enumerate(values)]
    store.write_batches([RunBatch(run_id, metrics=points)])
    history = store.get_metric_history(run_id, "m")
    for buckets in (None, 1000):
        got = store.metric_arrays(run_id, "m", buckets)
        assert got.total == 5
        assert got.steps == [p.step for p in history]
        assert got.timestamps == [p.timestamp for p in history]
        assert [repr(v) for v in got.values] == [repr(p.value) for p in history]
    assert store.metric_arrays(run_id, "never").total == 0


def test_metric_arrays_bucket_long_series_in_sql(store) -> None:
    run_id = _run(store)
    n = 40_000
    values = [math.cos(i / 300) for i in range(n)]
    values[777] = -5.0
    values[30_001] = 9.5
    values[20_000] = math.nan
    store.write_batches(
        [RunBatch(run_id, metrics=[Metric("m", v, 1000 + i, i * 3) for i, v in enumerate(values)])]
    )
    got = store.metric_arrays(run_id, "m", buckets=100)
    assert got.total == n
    assert len(got.steps) <= 2 * 100 + 2
    assert got.steps[0] == 0 and got.steps[-1] == (n - 1) * 3
    assert got.steps == sorted(got.steps)
    assert min(got.values) == -5.0 and max(got.values) == 9.5
    assert got.steps[got.values.index(-5.0)] == 777 * 3
    assert got.timestamps[got.values.index(9.5)] == 1000 + 30_001


def test_metric_arrays_default_serves_stores_without_the_fast_path(store) -> None:
    from mltrail.store.base import TrackingStore

    run_id = _run(store)
    store.write_batches([RunBatch(run_id, metrics=[Metric("m", 1.0, 5, 1)])])
    got = TrackingStore.metric_arrays(store, run_id, "m", buckets=10)
    assert tuple(got) == ([1], [5], [1.0], 1)
