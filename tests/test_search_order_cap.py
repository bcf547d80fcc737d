"""Order-by with 1 to 1,000 keys: results up to the cap, a clear error past it, never a crash.

SQLite 3.40 crashed the process from 31 keys (one outer join and two ORDER BY terms per key:
it crashes on a join with 64 or more terms), answered "too many tables" from 64 keys and
SQLAlchemy hit its recursion limit near 1,000. The cap lives in ``parse_order_by`` (and the SQL
builder refuses more); the SQL has at most one join and one ORDER BY term per key.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import mltrail
from mltrail.errors import FilterSyntaxError, InvalidInput
from mltrail.search import MAX_ORDER_KEYS, parse_order_by

SRC = Path(mltrail.__file__).resolve().parent.parent

COUNTS = [1, 10, MAX_ORDER_KEYS, MAX_ORDER_KEYS + 1, 64, 1000]


def _keys(n: int) -> list[str]:
    # Every entity, so each kind of subquery is in the statement.
    kinds = ("params.p", "metrics.m", "tags.t")
    return [f"{kinds[i % 3]}{i}" for i in range(n)]


def test_cap_is_small_and_named() -> None:
    assert 10 <= MAX_ORDER_KEYS <= 20
    assert len(parse_order_by(_keys(MAX_ORDER_KEYS))) == MAX_ORDER_KEYS
    with pytest.raises(FilterSyntaxError) as info:
        parse_order_by(_keys(MAX_ORDER_KEYS + 1))
    assert f"the limit is {MAX_ORDER_KEYS}" in info.value.message
    assert info.value.hint


def test_cap_counts_comma_separated_keys_in_one_item() -> None:
    with pytest.raises(FilterSyntaxError, match="more than"):
        parse_order_by([", ".join(_keys(MAX_ORDER_KEYS + 1))])
    with pytest.raises(FilterSyntaxError, match="more than"):
        parse_order_by([", ".join(_keys(6)), ", ".join(_keys(6))])


@pytest.mark.parametrize("n", COUNTS)
def test_search_with_many_order_keys(client, n: int) -> None:
    exp = client.create_experiment("wide")
    ids = []
    for i in range(3):
        run = client.create_run(exp, run_name=f"r{i}", start_time=1000 + i)
        client.log_params(run.info.run_id, {"p0": str(2 - i), "p3": "x"})
        client.log_metric(run.info.run_id, "m1", float(i))
        client.set_tag(run.info.run_id, "t2", "a")
        ids.append(run.info.run_id)
    client.flush()
    if n <= MAX_ORDER_KEYS:
        found = client.search_runs([exp], order_by=_keys(n))
        # params.p0 ascending: "0" (r2), "1" (r1), "2" (r0)
        assert [r.info.run_name for r in found] == ["r2", "r1", "r0"]
    else:
        with pytest.raises(InvalidInput) as info:
            client.search_runs([exp], order_by=_keys(n))
        assert f"the limit is {MAX_ORDER_KEYS}" in info.value.message


@pytest.mark.parametrize("n", [MAX_ORDER_KEYS + 1, 64, 1000])
def test_rest_answers_400_past_the_cap(store_uri: str, n: int) -> None:
    if not store_uri.startswith("http"):
        pytest.skip("the REST route")
    body = {"experiment_ids": ["0"], "order_by": _keys(n)}
    reply = httpx.post(f"{store_uri}/api/v1/runs/search", json=body, timeout=30)
    assert reply.status_code == 400, reply.text
    error = reply.json()
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert f"the limit is {MAX_ORDER_KEYS}" in error["message"]


def test_rest_answers_200_at_the_cap(store_uri: str) -> None:
    if not store_uri.startswith("http"):
        pytest.skip("the REST route")
    body = {"experiment_ids": ["0"], "order_by": _keys(MAX_ORDER_KEYS)}
    reply = httpx.post(f"{store_uri}/api/v1/runs/search", json=body, timeout=30)
    assert reply.status_code == 200, reply.text


def test_sql_at_the_cap_runs_in_a_child_process(tmp_path: Path) -> None:
    """The statement for the most keys allowed, every kind, on SQLite (in a child process, so
    a crash fails this test instead of killing the test run)."""
    script = textwrap.dedent(
        f"""
        import sqlalchemy as sa
        from mltrail import MltrailClient
        from mltrail.search import MAX_ORDER_KEYS, OrderKey
        from mltrail.store.sql_search import build_search_query
        uri = "sqlite:///{tmp_path / "m.db"}"
        c = MltrailClient(uri, objects="{tmp_path / "objects"}")
        exp = c.create_experiment("e")
        run = c.create_run(exp)
        c.log_param(run.info.run_id, "p0", "1")
        c.close()
        kinds = ("param", "metric", "tag")
        order = [OrderKey(kinds[i % 3], f"k{{i}}", i % 2 == 0) for i in range(MAX_ORDER_KEYS)]
        query = build_search_query([int(exp)], None, order, ("active",), 0, 10)
        with sa.create_engine(uri).connect() as conn:
            print(len(conn.execute(query).all()))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "MLTRAIL_CAPTURE": "0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"


def test_the_sql_builder_refuses_more_keys_than_the_cap() -> None:
    from mltrail.search import OrderKey
    from mltrail.store.sql_search import build_search_query

    order = [OrderKey("param", f"p{i}", True) for i in range(MAX_ORDER_KEYS + 1)]
    with pytest.raises(ValueError, match="the limit is"):
        build_search_query([1], None, order, ("active",), 0, 10)


def test_runs_ls_with_many_sort_flags_is_an_error(tmp_path: Path, monkeypatch) -> None:
    from mltrail.cli import cli
    from mltrail.config import init_project

    init_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = ["runs", "ls"]
    for key in _keys(31):
        args += ["--sort", key]
    result = CliRunner().invoke(cli, args, prog_name="mltrail")
    assert result.exit_code == 1, result.output
    assert f"error: order-by has more than {MAX_ORDER_KEYS} keys" in result.stderr
    assert "hint: Sort by at most" in result.stderr
    assert "Traceback" not in result.stderr
