"""Filters and order-by compiled to SQL, run against a real database.

Every test takes the ``engine`` fixture, so the module can be parametrized over SQLite and
PostgreSQL; test data avoid mixed-case and punctuation orderings, which depend on collation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from mltrail.errors import FilterSyntaxError
from mltrail.search import ORDER_DEFAULT, Comparison, OrderKey, parse_filter, parse_order_by
from mltrail.store import schema
from mltrail.store.engine import make_engine
from mltrail.store.sql_search import build_search_query

INF = float("inf")
NAN = float("nan")


def run_id(name: str) -> str:
    """A fixed 32-hex id per run: r1 → 0101…01."""
    return f"{int(name[1:]):02x}" * 16


# name: experiment, status, user, start, end, stage, parent
RUNS = {
    "r1": (1, "FINISHED", "alice", 1000, 2000, "active", None),
    "r2": (1, "FAILED", "bob", 2000, None, "active", "r1"),
    "r3": (1, "RUNNING", "alice", 3000, None, "active", None),
    "r4": (1, "FINISHED", "carol", 4000, 5000, "active", None),
    "r5": (1, "KILLED", "bob", 5000, 6000, "deleted", None),
    "r6": (2, "FINISHED", "alice", 6000, 7000, "active", None),
}
METRICS = {
    "r1": {"acc": 0.9, "loss": 0.1, "f1 score": 0.8},
    "r2": {"acc": 0.5, "loss": NAN, "val/loss": 0.3},
    "r3": {"acc": NAN, "loss": INF},
    "r4": {"acc": 0.7, "delta": -INF},
    "r5": {"acc": 1.0},
    "r6": {"acc": 0.95},
}
PARAMS = {
    "r1": {"lr": "0.01", "opt": "adam", "depth": "5", "size": "b"},
    "r2": {"lr": "0.1", "opt": "sgd", "size": "c"},
    "r3": {"opt": "Adam", "size": "a"},
    "r4": {"opt": "a_b%", "depth": "10"},
    "r5": {"opt": "adam"},
    "r6": {"opt": "adam"},
}
TAGS = {
    "r1": {"team": "ml", "note": "axb"},
    "r2": {"team": "ml-ops"},
    "r3": {"env": "Prod"},
    "r4": {"note": "a_b%"},
}


# The SQL search compiler itself; the HTTP store runs the same searches through a server.
pytestmark = pytest.mark.sql_only


@pytest.fixture
def engine(store_uri: str) -> Iterator[sa.Engine]:
    """An empty store database on each backend (SQLite, PostgreSQL)."""
    eng = make_engine(store_uri)
    schema.metadata.create_all(eng)
    yield eng
    eng.dispose()


def seed_experiments(conn: sa.Connection) -> None:
    """Experiments 1 and 2, both active."""
    conn.execute(
        schema.experiments.insert(),
        [
            {"experiment_id": i, "name": f"e{i}", "lifecycle_stage": "active"}
            | {"creation_time": 0, "last_update_time": 0}
            for i in (1, 2)
        ],
    )


def insert_run(
    conn: sa.Connection,
    name: str,
    experiment_id: int = 1,
    status: str = "FINISHED",
    user_id: str = "u",
    start_time: int = 0,
    end_time: int | None = None,
    lifecycle_stage: str = "active",
    parent: str | None = None,
    metrics: dict[str, float] | None = None,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> int:
    """Insert one run and its data; returns its run_pk."""
    run_pk = conn.execute(
        schema.runs.insert().returning(schema.runs.c.run_pk),
        {
            "run_id": run_id(name),
            "experiment_id": experiment_id,
            "name": name,
            "status": status,
            "user_id": user_id,
            "start_time": start_time,
            "end_time": end_time,
            "lifecycle_stage": lifecycle_stage,
            "parent_run_id": run_id(parent) if parent else None,
        },
    ).scalar_one()
    for key, value in (metrics or {}).items():
        # The store keeps NaN as NULL; the search must cope with exactly that.
        stored = None if value != value else value
        conn.execute(
            schema.latest_metrics.insert(),
            {"run_pk": run_pk, "key": key, "value": stored, "step": 0, "timestamp": 0},
        )
    for table, items in ((schema.params, params), (schema.tags, tags)):
        for key, value in (items or {}).items():
            conn.execute(table.insert(), {"run_pk": run_pk, "key": key, "value": value})
    return run_pk


@pytest.fixture
def db(engine: sa.Engine) -> sa.Engine:
    """The store seeded with RUNS and their metrics, params and tags."""
    with engine.begin() as conn:
        seed_experiments(conn)
        for name, (exp, status, user, start, end, stage, parent) in RUNS.items():
            insert_run(
                conn, name, exp, status, user, start, end, stage, parent,
                METRICS.get(name), PARAMS.get(name), TAGS.get(name),
            )  # fmt: skip
    return engine


def search(
    engine: sa.Engine,
    text: str | None = None,
    order: Sequence[str] | Sequence[OrderKey] | str | None = None,
    *,
    experiments: Sequence[int] = (1,),
    stages: tuple[str, ...] = ("active",),
    offset: int = 0,
    limit: int = 1000,
) -> list[str]:
    """Names of the matching runs, in result order."""
    if order is None or isinstance(order, str) or all(isinstance(o, str) for o in order):
        keys = parse_order_by(order)  # type: ignore[arg-type]
    else:
        keys = list(order)  # type: ignore[arg-type]
    query = build_search_query(list(experiments), parse_filter(text), keys, stages, offset, limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        names = dict(conn.execute(sa.select(schema.runs.c.run_id, schema.runs.c.name)).all())
    return [names[row.run_id] for row in rows]


ALL = {"r1", "r2", "r3", "r4"}
R1, R2, R3 = run_id("r1"), run_id("r2"), run_id("r3")

FILTERS = [
    # metrics; r3's acc and r2's loss are NaN, r4 has no loss
    ("metrics.acc > 0.6", {"r1", "r4"}),
    ("metrics.acc > 0", {"r1", "r2", "r4"}),
    ("metrics.acc >= 0.7", {"r1", "r4"}),
    ("metrics.acc < 0.7", {"r2"}),
    ("metrics.acc <= 0.7", {"r2", "r4"}),
    ("metrics.acc = 0.5", {"r2"}),
    ("metrics.acc != 0.5", {"r1", "r4"}),
    ("metrics.acc <> 0.5", {"r1", "r4"}),
    ("metrics.acc IN (0.5, 0.9)", {"r1", "r2"}),
    ("metrics.acc NOT IN (0.5, 0.9)", {"r4"}),
    ("metrics.acc IS NULL", set()),
    ("metrics.acc IS NOT NULL", ALL),
    ("metrics.loss IS NULL", {"r4"}),
    ("metrics.loss IS NOT NULL", {"r1", "r2", "r3"}),
    ("metrics.loss < 1", {"r1"}),
    ("metrics.loss != 0.1", {"r3"}),
    ("metrics.loss > 1e308", {"r3"}),
    ("metrics.loss = 1e999", {"r3"}),
    ("metrics.delta < -1e308", {"r4"}),
    ("metrics.delta = -1e999", {"r4"}),
    ("NOT metrics.acc > 0.6", {"r2", "r3"}),
    ("NOT metrics.acc != 0.5", {"r2", "r3"}),
    ("NOT metrics.loss < 1", {"r2", "r3", "r4"}),
    ("metrics.`f1 score` >= 0.8", {"r1"}),
    ("metrics.val/loss < 1", {"r2"}),
    ("metrics.nope > 0", set()),
    ("metrics.nope IS NULL", ALL),
    ("metrics.Acc > 0", set()),
    # params
    ("params.opt = 'adam'", {"r1"}),
    ("params.opt != 'adam'", {"r2", "r3", "r4"}),
    ("params.opt LIKE 'a%'", {"r1", "r4"}),
    ("params.opt LIKE 'A%'", {"r3"}),
    ("params.opt ILIKE 'a%'", {"r1", "r3", "r4"}),
    ("params.opt ILIKE 'ADAM'", {"r1", "r3"}),
    ("params.opt NOT LIKE 'a%'", {"r2", "r3"}),
    ("params.opt NOT ILIKE 'a%'", {"r2"}),
    ("params.opt LIKE '%\\%'", {"r4"}),
    ("params.opt ILIKE 'A\\_B%'", {"r4"}),
    ("params.opt IN ('adam', 'sgd')", {"r1", "r2"}),
    ("params.opt NOT IN ('adam', 'sgd')", {"r3", "r4"}),
    ("params.depth = 5", {"r1"}),
    ("params.depth = '10'", {"r4"}),
    ("params.depth IN (5, 10)", {"r1", "r4"}),
    ("params.lr = 0.01", {"r1"}),
    ("params.lr = 0.010", set()),
    ("params.depth != '5'", {"r4"}),
    ("NOT params.depth = '5'", {"r2", "r3", "r4"}),
    ("params.depth IS NULL", {"r2", "r3"}),
    ("params.depth IS NOT NULL", {"r1", "r4"}),
    ("params.Opt = 'adam'", set()),
    # tags
    ("tags.team = 'ml'", {"r1"}),
    ("tags.team LIKE 'ml%'", {"r1", "r2"}),
    ("tags.team IN ('ml-ops')", {"r2"}),
    ("tags.team NOT IN ('ml')", {"r2"}),
    ("tags.team IS NULL", {"r3", "r4"}),
    ("tags.env LIKE 'prod'", set()),
    ("tags.env ILIKE 'prod'", {"r3"}),
    ("tags.note LIKE 'a_b'", {"r1"}),
    ("tags.note LIKE 'a_b%'", {"r1", "r4"}),
    ("tags.note LIKE 'a\\_b%'", {"r4"}),
    ("tags.note LIKE 'a\\x%'", {"r1"}),
    ("tags.note = 'a_b%'", {"r4"}),
    # attributes
    (f"attributes.run_id = '{R2}'", {"r2"}),
    (f"attributes.run_id IN ('{R1}', '{R3}')", {"r1", "r3"}),
    (f"attributes.run_id NOT IN ('{R1}', '{R3}')", {"r2", "r4"}),
    ("attributes.run_id LIKE '03%'", {"r3"}),
    ("attributes.run_name = 'r1'", {"r1"}),
    ("attributes.name LIKE 'r%'", ALL),
    ("run.name != 'r1'", {"r2", "r3", "r4"}),
    ("attr.name ILIKE 'R4'", {"r4"}),
    ("attributes.status = 'finished'", {"r1", "r4"}),
    ("attributes.status != 'FINISHED'", {"r2", "r3"}),
    ("attributes.status IN ('running', 'FAILED')", {"r2", "r3"}),
    ("attributes.status NOT IN ('RUNNING')", {"r1", "r2", "r4"}),
    ("attributes.user_id = 'alice'", {"r1", "r3"}),
    ("attributes.user_id NOT IN ('alice')", {"r2", "r4"}),
    (f"attributes.parent_run_id = '{R1}'", {"r2"}),
    ("attributes.parent_run_id IS NULL", {"r1", "r3", "r4"}),
    ("attributes.parent_run_id IS NOT NULL", {"r2"}),
    ("attributes.parent_run_id != 'x'", {"r2"}),
    (f"NOT attributes.parent_run_id = '{R1}'", {"r1", "r3", "r4"}),
    ("NOT attributes.parent_run_id LIKE '%'", {"r1", "r3", "r4"}),
    ("attributes.start_time >= 3000", {"r3", "r4"}),
    ("attributes.start_time > 2999.5", {"r3", "r4"}),
    ("attributes.created < 2000", {"r1"}),
    ("attributes.start_time IN (1000, 4000)", {"r1", "r4"}),
    ("attributes.start_time != 1000", {"r2", "r3", "r4"}),
    ("attributes.end_time IS NULL", {"r2", "r3"}),
    ("attributes.end_time > 1500.5", {"r1", "r4"}),
    ("attributes.end_time != 2000", {"r4"}),
    ("attributes.end_time NOT IN (2000)", {"r4"}),
    ("NOT attributes.end_time = 2000", {"r2", "r3", "r4"}),
    ("NOT attributes.end_time < 3000", {"r2", "r3", "r4"}),
    ("attributes.lifecycle_stage = 'active'", ALL),
    ("attributes.experiment_id = 1", ALL),
    ("attributes.experiment_id = '2'", set()),
    ("attributes.experiment_id != 1", set()),
    # logic
    ("metrics.acc > 0.6 AND params.opt = 'adam'", {"r1"}),
    ("metrics.acc > 0.6 OR params.opt = 'sgd'", {"r1", "r2", "r4"}),
    ("NOT (metrics.acc > 0.6 OR params.opt = 'sgd')", {"r3"}),
    ("NOT metrics.acc > 0.6 AND NOT params.opt = 'sgd'", {"r3"}),
    ("(metrics.acc > 0.6 OR params.opt = 'sgd') AND attributes.user_id != 'carol'", {"r1", "r2"}),
    ("metrics.acc > 0.6 OR params.opt = 'sgd' AND attributes.user_id = 'carol'", {"r1", "r4"}),
    ("(metrics.acc > 0.6 OR params.opt = 'sgd') AND attributes.user_id = 'carol'", {"r4"}),
    ("NOT NOT metrics.acc > 0.6", {"r1", "r4"}),
    ("metrics.loss IS NULL OR metrics.loss > 1", {"r3", "r4"}),
    ("tags.team LIKE 'ml%' AND NOT tags.team = 'ml' AND metrics.acc = 0.5", {"r2"}),
]


@pytest.mark.parametrize(("text", "expected"), FILTERS)
def test_filter(db: sa.Engine, text: str, expected: set[str]) -> None:
    assert set(search(db, text)) == expected


def test_no_filter_lists_active_runs_newest_first(db: sa.Engine) -> None:
    assert search(db) == ["r4", "r3", "r2", "r1"]
    assert search(db, "  ", list(ORDER_DEFAULT)) == ["r4", "r3", "r2", "r1"]


def test_experiments_restrict_the_search(db: sa.Engine) -> None:
    assert search(db, "metrics.acc > 0.9", experiments=[1, 2]) == ["r6"]
    assert search(db, "attributes.experiment_id = 2", experiments=[1, 2]) == ["r6"]
    text = "attributes.experiment_id IN (1, 2) AND metrics.acc >= 0.9"
    assert search(db, text, experiments=[1, 2]) == ["r6", "r1"]
    assert search(db, experiments=[2]) == ["r6"]
    assert search(db, experiments=[]) == []


def test_lifecycle_stages_restrict_the_search(db: sa.Engine) -> None:
    assert search(db, "metrics.acc >= 1") == []
    assert search(db, "metrics.acc >= 1", stages=("active", "deleted")) == ["r5"]
    assert search(db, stages=("deleted",)) == ["r5"]
    both = ("active", "deleted")
    assert search(db, "attributes.lifecycle_stage = 'deleted'", stages=both) == ["r5"]
    assert search(db, "attributes.status = 'KILLED'", stages=both) == ["r5"]


ORDERS = [
    ("metrics.acc", ["r2", "r4", "r1", "r3"]),
    ("metrics.acc DESC", ["r1", "r4", "r2", "r3"]),
    # NULLs (r4 missing, r2 NaN) last either way, then newest first among them
    ("metrics.loss", ["r1", "r3", "r4", "r2"]),
    ("-metrics.loss", ["r3", "r1", "r4", "r2"]),
    ("metrics.delta", ["r4", "r3", "r2", "r1"]),
    ("metrics.delta DESC", ["r4", "r3", "r2", "r1"]),
    ("metrics.nope DESC", ["r4", "r3", "r2", "r1"]),
    ("params.size", ["r3", "r1", "r2", "r4"]),
    ("params.size DESC", ["r2", "r1", "r3", "r4"]),
    ("tags.team", ["r1", "r2", "r4", "r3"]),
    ("tags.team DESC", ["r2", "r1", "r4", "r3"]),
    ("attributes.end_time", ["r1", "r4", "r3", "r2"]),
    ("attributes.end_time DESC", ["r4", "r1", "r3", "r2"]),
    ("attributes.parent_run_id DESC", ["r2", "r4", "r3", "r1"]),
    ("attributes.start_time", ["r1", "r2", "r3", "r4"]),
    ("+attributes.created", ["r1", "r2", "r3", "r4"]),
    ("attributes.run_name DESC", ["r4", "r3", "r2", "r1"]),
    ("attributes.user_id, -metrics.acc", ["r1", "r3", "r2", "r4"]),
    ("attributes.user_id, metrics.acc", ["r1", "r3", "r2", "r4"]),
    ("attributes.status DESC, metrics.acc DESC", ["r3", "r1", "r4", "r2"]),
    ("metrics.acc, metrics.acc DESC", ["r2", "r4", "r1", "r3"]),
    ("params.depth, tags.note DESC", ["r4", "r1", "r3", "r2"]),
]


@pytest.mark.parametrize(("order", "expected"), ORDERS)
def test_order(db: sa.Engine, order: str, expected: list[str]) -> None:
    assert search(db, None, order) == expected


def test_order_with_filter(db: sa.Engine) -> None:
    assert search(
        db, "metrics.acc IS NOT NULL AND attributes.user_id != 'carol'", "metrics.acc DESC"
    ) == [
        "r1",
        "r2",
        "r3",
    ]


def test_paging_is_stable_with_ties_and_nulls(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        seed_experiments(conn)
        for i in range(17):
            # Three distinct values, NaN and missing; equal start times everywhere but one.
            metrics = {"m": [1.0, 2.0, 2.0, NAN][i % 4]} if i % 5 else {}
            insert_run(conn, f"r{i + 1}", start_time=100 if i != 7 else 200, metrics=metrics)
    for order in (["metrics.m"], ["-metrics.m"], []):
        full = search(engine, None, order)
        assert len(full) == 17
        pages = [search(engine, None, order, offset=o, limit=3) for o in range(0, 18, 3)]
        assert [name for page in pages for name in page] == full
        assert search(engine, None, order, offset=17, limit=3) == []
    # Equal keys fall back to start_time DESC, then insertion order (run_pk).
    assert search(engine) == ["r8"] + [f"r{i}" for i in range(1, 18) if i != 8]
    ordered = search(engine, None, "metrics.m")
    ones = [f"r{i + 1}" for i in range(17) if i % 5 and i % 4 == 0]
    twos = [f"r{i + 1}" for i in range(17) if i % 5 and i % 4 in (1, 2)]
    nulls = [f"r{i + 1}" for i in range(17) if not i % 5 or i % 4 == 3]
    newest_first = sorted(nulls, key=lambda n: (n != "r8", int(n[1:])))
    assert ordered == ones + twos + newest_first


def test_query_selects_run_pk_and_run_id(db: sa.Engine) -> None:
    query = build_search_query([1], None, [], ("active",), 0, 1)
    with db.connect() as conn:
        row = conn.execute(query).one()
    assert row._fields == ("run_pk", "run_id")
    assert row.run_id == run_id("r4")


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()])
def test_compiles_without_dialect_specific_text(dialect: sa.Dialect) -> None:
    expr = parse_filter(
        "metrics.a > 1 AND (params.b ILIKE 'x%' OR NOT tags.c IS NULL) "
        "AND attributes.end_time < 5.5 AND attributes.experiment_id IN (1, 2)"
    )
    order = parse_order_by("-metrics.a, params.b, attributes.end_time")
    sql = str(build_search_query([1], expr, order, ("active",), 10, 5).compile(dialect=dialect))
    # NULLS LAST needs SQLite 3.30; the store's RETURNING already needs 3.35.
    assert sql.upper().count("NULLS LAST") == 3
    assert sql.upper().count("JOIN") == 1  # the first key; the others are subqueries
    assert sql.count("EXISTS") == 3


def test_unknown_operator_is_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported filter operator"):
        build_search_query([1], Comparison("metric", "a", "~", 1), [], ("active",), 0, 1)


_PIECES = [
    "metrics.acc", "metrics.loss", "params.opt", "tags.team", "attributes.status",
    "attributes.end_time", "attributes.parent_run_id", "attributes.experiment_id", "AND", "OR",
    "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "(", ")", ",", "=", "!=", "<", ">=", "0.5", "1",
    "-1e999", "'adam'", "'a%'", "'FINISHED'", "'1'",
]  # fmt: skip


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(_PIECES), min_size=3, max_size=14))
def test_fuzz_every_parsed_filter_runs(db: sa.Engine, pieces: list[str]) -> None:
    # The database is only read here, so sharing it across examples is safe.
    text = " ".join(pieces)
    try:
        parse_filter(text)
    except FilterSyntaxError:
        return
    names = search(db, text)
    assert set(names) <= ALL
    # NOT is an exact complement: no run is lost to three-valued logic.
    assert set(search(db, f"NOT ({text})")) == ALL - set(names)
