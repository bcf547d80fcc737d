"""check_search_keys: filter and sort keys that no run has, against a real embedded store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mltrail.errors import InvalidInput
from mltrail.search.keys import check_search_keys, unknown_keys
from mltrail.tracking.client import MltrailClient


@pytest.fixture
def client(tmp_path: Path) -> Iterator[MltrailClient]:
    c = MltrailClient(str(tmp_path))
    exp = c.create_experiment("keys")
    for depth in (1, 3):
        run = c.create_run(exp, run_name=f"d{depth}", tags={"team": "ml"})
        c.log_params(run.run_id, {"max_depth": depth})
        c.log_metrics(run.run_id, {"accuracy": 0.9, "val_loss": 0.1}, 0)
        c.set_terminated(run.run_id)
    c.create_experiment("empty")
    yield c
    c.close()


def _ids(c: MltrailClient, name: str) -> list[str]:
    exp = c.get_experiment_by_name(name)
    assert exp is not None
    return [exp.experiment_id]


def test_typos_get_the_nearest_key(client: MltrailClient):
    ids = _ids(client, "keys")
    found = unknown_keys(
        client, ids, "metrics.acuracy > 0.5 and params.max_dpth = 3", None, "active_only", []
    )
    assert [(u.name, u.suggestion) for u in found] == [
        ("metrics.acuracy", "metrics.accuracy"),
        ("params.max_dpth", "params.max_depth"),
    ]
    with pytest.raises(InvalidInput, match=r"has metrics\.acuracy or params\.max_dpth") as e:
        check_search_keys(client, ids, "metrics.acuracy > 0.5 or params.max_dpth = 3", None,
                          "active_only", [])  # fmt: skip
    assert e.value.hint == "Did you mean metrics.accuracy, params.max_depth?"


def test_no_close_key_lists_the_existing_ones(client: MltrailClient):
    with pytest.raises(InvalidInput) as e:
        check_search_keys(client, _ids(client, "keys"), None, ["tags.zzz"], "active_only", [])
    # The user's tags first, then the system ones every run carries.
    assert e.value.hint.startswith("The runs have these tags: team, mltrail.")


def test_known_keys_and_empty_experiments_pass(client: MltrailClient):
    ids = _ids(client, "keys")
    runs = client.search_runs(ids, None, ["-metrics.accuracy"])
    # Found runs with the sort key: nothing is asked of the store.
    check_search_keys(client, ids, None, ["-metrics.accuracy"], "active_only", runs)
    # An existing key that matches nothing is a plain empty result.
    check_search_keys(client, ids, "metrics.accuracy > 2", None, "active_only", [])
    check_search_keys(client, _ids(client, "empty"), "metrics.acuracy > 1", None, "active_only", [])
    # Attributes always exist.
    check_search_keys(client, ids, "attributes.run_name = 'x'", None, "active_only", [])
