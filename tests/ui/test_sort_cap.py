"""The runs page with a sort of more keys than the search allows: the page says so, no crash."""

from __future__ import annotations

import pytest

from mltrail.search import MAX_ORDER_KEYS


@pytest.mark.parametrize("n", [MAX_ORDER_KEYS, MAX_ORDER_KEYS + 1, 31, 64, 1000])
def test_runs_page_with_many_sort_keys(ui, n: int) -> None:
    exp = ui.client.create_experiment("wide")
    run = ui.client.create_run(exp, run_name="only")
    ui.client.log_param(run.info.run_id, "p0", "1")
    ui.client.flush()
    sort = ",".join(f"params.p{i}" for i in range(n))
    page = ui.get(f"/experiments/{exp}?sort={sort}")
    assert page.status_code < 500
    if n <= MAX_ORDER_KEYS:
        assert page.status_code == 200
        assert "only" in page.text
    else:
        assert f"the limit is {MAX_ORDER_KEYS}" in page.text
