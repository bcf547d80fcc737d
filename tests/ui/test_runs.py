"""The runs table page, /experiments/{id}: columns, sort, filter, grouping, paging, escaping."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.ui.conftest import UI, shot

# An hour ago, so durations read as real ones do.
T0 = int(time.time() * 1000) - 3_600_000
DASH = "\u2013"  # the pager's en dash in "Runs 1-50"
XSS = ('<script>alert("x")</script>', '"><img src=x onerror=alert(1)>')


def seed(ui: UI, n: int, name: str = "wine", **extra: dict) -> tuple[str, list[str]]:
    """An experiment of ``n`` finished runs ``run-000``..., newest last; their ids in order.

    Run i has params alpha (i % 3 as "0.i") and depth (str(i)), metrics rmse (i / 10) and
    acc (1 - i / 100); ``extra`` maps a run index to more params.
    """
    from mltrail.entities import Metric

    exp = ui.client.create_experiment(name)
    ids = []
    for i in range(n):
        run = ui.client.create_run(exp, run_name=f"run-{i:03d}", start_time=T0 + i * 1000)
        rid = run.info.run_id
        ui.client.log_batch(
            rid,
            metrics=[Metric("rmse", i / 10, T0, 0), Metric("acc", 1 - i / 100, T0, 0)],
            params={"alpha": f"0.{i % 3}", "depth": str(i), **extra.get(str(i), {})},
        )
        ui.client.set_terminated(rid)
        ids.append(rid)
    return exp, ids


def names(html: str) -> list[str]:
    """Run names in table order."""
    return re.findall(r'<a href="/runs/[0-9a-f]{32}"[^>]*>([^<]*)</a>', html)


def headers(html: str) -> list[str]:
    """The table's column labels."""
    head = html[html.index("<thead>") : html.index("</thead>")]
    return [
        re.sub(r"<[^>]+>|\s+", "", h) for h in re.findall(r"<th scope=\"col\".*?</th>", head, re.S)
    ]


def test_runs_table_lists_runs_newest_first_with_default_columns(ui: UI) -> None:
    exp, ids = seed(ui, 3)
    reply = ui.get(f"/experiments/{exp}")
    assert reply.status_code == 200
    html = reply.text
    assert "<title>wine · mltrail</title>" in html
    assert names(html) == ["run-002", "run-001", "run-000"]
    assert f'href="/runs/{ids[0]}"' in html
    cols = headers(html)
    assert cols[:4] == ["Run", "Status", "Started▼", "Duration"]
    assert {"accmetric", "rmsemetric", "alphaparam", "depthparam"} <= set(cols)
    assert "3 runs" in html
    assert "FINISHED" in html
    assert "data-keynav" in html and 'class="grid runs"' in html


def test_experiments_list_links_to_the_runs_table(ui: UI) -> None:
    exp, _ = seed(ui, 1)
    assert f'href="/experiments/{exp}"' in ui.get("/experiments").text


def test_default_columns_take_eight_metrics_and_eight_params(ui: UI) -> None:
    from mltrail.entities import Metric

    exp = ui.client.create_experiment("wide")
    run = ui.client.create_run(exp, run_name="wide-run")
    ui.client.log_batch(
        run.info.run_id,
        metrics=[Metric(f"m{i:02d}", float(i), T0, 0) for i in range(12)],
        params={f"p{i:02d}": str(i) for i in range(12)},
    )
    cols = headers(ui.get(f"/experiments/{exp}").text)
    assert sum(c.endswith("metric") for c in cols) == 8
    assert sum(c.endswith("param") for c in cols) == 8
    # The rest are in the column picker.
    assert 'value="metrics.m11"' in ui.get(f"/experiments/{exp}").text


def test_columns_are_chosen_in_the_url(ui: UI) -> None:
    exp, _ = seed(ui, 2)
    html = ui.get(f"/experiments/{exp}?cols=metrics.rmse,params.alpha").text
    assert headers(html)[4:] == ["rmsemetric", "alphaparam"]
    # The picker ticks them, and every link keeps them.
    assert '<input type="checkbox" name="cols" value="metrics.rmse" checked>' in html
    assert '<input type="checkbox" name="cols" value="metrics.acc">' in html
    assert "cols=metrics.rmse%2Cparams.alpha" in html
    # A bare key is qualified as `runs ls --columns` does; the picker's repeated form works too.
    again = ui.get(f"/experiments/{exp}?cols=&cols=acc&cols=params.depth").text
    assert headers(again)[4:] == ["accmetric", "depthparam"]
    # No extra columns at all.
    assert headers(ui.get(f"/experiments/{exp}?cols=").text) == [
        "Run", "Status", "Started▼", "Duration",
    ]  # fmt: skip


def test_an_unknown_bare_column_is_a_note_not_an_error(ui: UI) -> None:
    exp, _ = seed(ui, 1)
    reply = ui.get(f"/experiments/{exp}?cols=nope,metrics.rmse")
    assert reply.status_code == 200
    assert "unknown column &#39;nope&#39;" in reply.text
    assert headers(reply.text)[4:] == ["rmsemetric"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("metrics.rmse", ["run-000", "run-001", "run-002", "run-003"]),
        ("metrics.rmse DESC", ["run-003", "run-002", "run-001", "run-000"]),
        ("-metrics.acc", ["run-000", "run-001", "run-002", "run-003"]),
        ("params.alpha DESC", ["run-002", "run-001", "run-003", "run-000"]),
        ("attributes.run_name", ["run-000", "run-001", "run-002", "run-003"]),
    ],
)
def test_sort_by_metric_param_or_attribute(ui: UI, sort: str, expected: list[str]) -> None:
    exp, _ = seed(ui, 4)
    html = ui.get(f"/experiments/{exp}", params={"sort": sort}).text
    assert names(html) == expected


def test_headers_link_to_sorting_and_show_the_direction(ui: UI) -> None:
    exp, _ = seed(ui, 2)
    html = ui.get(f"/experiments/{exp}?cols=metrics.rmse&sort=metrics.rmse").text
    head = html[html.index("<thead>") : html.index("</thead>")]
    # Sorted ascending: the header says so and its link sorts descending.
    assert 'aria-sort="ascending"' in head
    assert "sort=metrics.rmse%20DESC&amp;cols=metrics.rmse" in head
    assert "sort=attributes.run_name&amp;" in head
    desc = ui.get(f"/experiments/{exp}?cols=metrics.rmse&sort=metrics.rmse%20DESC").text
    assert 'aria-sort="descending"' in desc
    assert 'href="/experiments/1?sort=metrics.rmse&amp;cols=metrics.rmse"' in desc.replace(
        f"/experiments/{exp}?", "/experiments/1?"
    )


def test_sorting_by_a_key_with_a_space_quotes_it(ui: UI) -> None:
    exp = ui.client.create_experiment("spaces")
    for i, v in enumerate((2.0, 1.0)):
        run = ui.client.create_run(exp, run_name=f"r{i}", start_time=T0 + i)
        ui.client.log_metric(run.info.run_id, "val loss", v)
    ui.client.flush()
    html = ui.get(f"/experiments/{exp}").text
    assert "sort=metrics.%60val%20loss%60" in html
    assert names(ui.get(f"/experiments/{exp}", params={"sort": "metrics.`val loss`"}).text) == [
        "r1",
        "r0",
    ]


def test_filter_uses_the_cli_language(ui: UI) -> None:
    exp, _ = seed(ui, 6)
    html = ui.get(
        f"/experiments/{exp}", params={"filter": "metrics.rmse >= 0.2 and params.alpha = '0.0'"}
    ).text
    assert names(html) == ["run-003"]
    assert 'value="metrics.rmse &gt;= 0.2 and params.alpha = &#39;0.0&#39;"' in html
    none = ui.get(f"/experiments/{exp}", params={"filter": "metrics.rmse > 100"})
    assert none.status_code == 200
    assert "No runs match this filter." in none.text
    assert "runs-note" not in none.text
    # A key no run has is named, with the nearest one, as the CLI does.
    typo = ui.get(f"/experiments/{exp}", params={"filter": "metrics.rmsee > 0.1"}).text
    assert "no run in the searched experiments has metrics.rmsee" in typo
    assert "Did you mean metrics.rmse?" in typo


def test_bad_filter_is_an_inline_400_with_a_hint(ui: UI) -> None:
    exp, _ = seed(ui, 2)
    reply = ui.get(f"/experiments/{exp}", params={"filter": "metrics.rmse >"})
    assert reply.status_code == 400
    html = reply.text
    assert "text/html" in reply.headers["content-type"]
    assert "<strong>Bad filter:</strong> missing value after &#39;&gt;&#39;" in html
    assert '<pre class="caret">' in html and "^" in html
    assert "mltrail runs ls --filter" in html
    assert "Traceback" not in html
    # The filter stays in the box to be fixed, and the page keeps its frame.
    assert 'value="metrics.rmse &gt;"' in html and 'aria-invalid="true"' in html
    assert "<title>wine · mltrail</title>" in html
    # The problem is shown above where the table would be; no table is rendered.
    assert "<table" not in html
    unknown = ui.get(f"/experiments/{exp}", params={"filter": "foo = 1"})
    assert unknown.status_code == 400
    assert "unknown entity &#39;foo&#39;" in unknown.text


def test_bad_sort_and_bad_page_token_are_inline_400s(ui: UI) -> None:
    exp, _ = seed(ui, 2)
    sort = ui.get(f"/experiments/{exp}", params={"sort": "metrics.rmse sideways"})
    assert sort.status_code == 400
    assert "Bad sort:" in sort.text
    token = ui.get(f"/experiments/{exp}", params={"page_token": "garbage"})
    assert token.status_code == 400
    assert "Bad page link:" in token.text


def test_grouping_by_a_param_shows_counts_and_means(ui: UI) -> None:
    exp, _ = seed(ui, 6)
    html = ui.get(f"/experiments/{exp}?group=params.alpha&cols=metrics.rmse,params.depth").text
    heads = re.findall(r'<tr class="group".*?</tr>', html, re.S)
    assert len(heads) == 3
    # Newest first: run-005 (alpha 0.2) opens the first group; rmse mean of runs 5 and 2.
    first = heads[0]
    assert '<span class="value">0.2</span>' in first
    assert "· 2 runs" in first
    assert ">0.35</td>" in first
    # Rows follow their group header.
    body = html[html.index("<tbody>") :]
    assert body.index("run-005") < body.index("run-002") < body.index('data-group-head="2"')
    assert 'option value="params.alpha" selected' in html


def test_grouping_runs_without_the_param_and_by_an_odd_key(ui: UI) -> None:
    exp, _ = seed(ui, 2, extra={"1": {"only": "x"}})
    html = ui.get(f"/experiments/{exp}?group=params.only").text
    assert '<em class="muted">not set</em>' in html
    odd = ui.get(f"/experiments/{exp}?group=metrics.rmse")
    assert odd.status_code == 200
    assert "cannot group by" in odd.text
    assert '<tr class="group"' not in odd.text


def test_paging_across_pages(ui: UI) -> None:
    exp, _ = seed(ui, 120)
    first = ui.get(f"/experiments/{exp}")
    html = first.text
    assert len(names(html)) == 50
    assert names(html)[0] == "run-119"
    assert f"Runs 1{DASH}50 of 120" in html
    assert '<span class="off">← Previous</span>' in html
    nxt = re.search(r'<a href="([^"]+)" rel="next">', html).group(1).replace("&amp;", "&")
    page2 = ui.get(nxt).text
    assert names(page2)[0] == "run-069"
    assert f"Runs 51{DASH}100 of 120" in page2
    nxt3 = re.search(r'<a href="([^"]+)" rel="next">', page2).group(1).replace("&amp;", "&")
    page3 = ui.get(nxt3).text
    assert names(page3) == [f"run-{i:03d}" for i in range(19, -1, -1)]
    assert f"Runs 101{DASH}120 of 120" in page3
    assert '<span class="off">Next →</span>' in page3
    # Previous walks back the same way.
    prev = re.search(r'<a href="([^"]+)" rel="prev">', page3).group(1).replace("&amp;", "&")
    assert names(ui.get(prev).text) == names(page2)
    prev1 = re.search(r'<a href="([^"]+)" rel="prev">', page2).group(1).replace("&amp;", "&")
    assert names(ui.get(prev1).text) == names(html)
    # Paging keeps the columns the first page showed.
    assert parse_qs(urlsplit(nxt3).query)["cols"] == parse_qs(urlsplit(nxt).query)["cols"]


def test_page_size_is_selectable(ui: UI) -> None:
    exp, _ = seed(ui, 120)
    html = ui.get(f"/experiments/{exp}?size=100").text
    assert len(names(html)) == 100
    assert "<option selected>100</option>" in html
    # An odd size falls back to the default.
    assert len(names(ui.get(f"/experiments/{exp}?size=7").text)) == 50
    assert len(names(ui.get(f"/experiments/{exp}?size=250").text)) == 120


def test_filter_and_sort_go_back_to_the_first_page(ui: UI) -> None:
    exp, _ = seed(ui, 60)
    html = ui.get(f"/experiments/{exp}").text
    nxt = re.search(r'<a href="([^"]+)" rel="next">', html).group(1).replace("&amp;", "&")
    page2 = ui.get(nxt).text
    head = page2[page2.index("<thead>") : page2.index("</thead>")]
    assert "page_token" not in head
    form = page2[page2.index('role="search"') : page2.index("</form>")]
    assert "page_token" not in form


def test_selection_and_compare_controls(ui: UI) -> None:
    exp, ids = seed(ui, 2)
    html = ui.get(f"/experiments/{exp}").text
    assert f'<input type="checkbox" name="runs" value="{ids[0]}"' in html
    assert 'id="compare"' in html and 'form="compare-form"' in html
    assert '<form id="compare-form" method="get" action="/compare">' in html
    assert 'data-max-compare="100"' in html


def test_unknown_experiment_is_a_404_page(ui: UI) -> None:
    for ref in ("999", "abc"):
        reply = ui.get(f"/experiments/{ref}")
        assert reply.status_code == 404
        assert "text/html" in reply.headers["content-type"]


def test_empty_experiment(ui: UI) -> None:
    exp = ui.client.create_experiment("empty")
    reply = ui.get(f"/experiments/{exp}")
    assert reply.status_code == 200
    assert "No runs in this experiment yet" in reply.text


def test_user_text_is_escaped_everywhere(ui: UI) -> None:
    exp = ui.client.create_experiment(XSS[1])
    for i, evil in enumerate(XSS):
        run = ui.client.create_run(exp, run_name=evil, start_time=T0 + i)
        ui.client.log_params(run.info.run_id, {"alpha": evil})
        ui.client.set_tag(run.info.run_id, "note", evil)
    ui.client.flush()
    urls = [
        f"/experiments/{exp}",
        f"/experiments/{exp}?group=params.alpha&cols=params.alpha,tags.note",
        f"/experiments/{exp}?group=tags.note",
        # Crafted URLs: their values come back in links, hidden fields and messages.
        f"/experiments/{exp}?cols={XSS[1]}&filter={XSS[0]}",
        f"/experiments/{exp}?sort={XSS[1]}&group={XSS[0]}",
        f"/experiments/{exp}?group={XSS[1]}&cols=%22%3E%3Cb%3E",
    ]
    for url in urls:
        html = ui.get(url).text
        assert "<script>alert" not in html, url
        assert "<img src=x" not in html, url
        assert '"><b>' not in html, url
    grouped = ui.get(urls[1]).text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in grouped
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in grouped


def test_deleted_experiment_shows_its_runs_from_the_bin(ui: UI) -> None:
    exp, _ = seed(ui, 2)
    ui.client.delete_experiment(exp)
    html = ui.get(f"/experiments/{exp}").text
    assert "This experiment is deleted" in html
    assert names(html) == ["run-001", "run-000"]
    # The store's count is of active runs (none here): not shown beside the runs it lists.
    assert "0 runs" not in html
    assert f"experiment {exp}" in html


# -- in Chromium ---------------------------------------------------------------------------------


@pytest.mark.browser
def test_runs_table_in_chromium(ui: UI, page) -> None:
    exp, _ = seed(ui, 12)
    page.goto(f"{ui.url}/experiments/{exp}")
    assert page.title() == "wine · mltrail"
    page.get_by_role("link", name="run-011").wait_for()
    shot(page, "runs-table")

    # Filter with the input.
    page.locator("input[name=filter]").fill("metrics.rmse < 0.35")
    page.locator("input[name=filter]").press("Enter")
    page.wait_for_url(re.compile(r"filter=metrics"))
    assert page.locator("table.runs tbody tr").count() == 4

    # Sort by clicking a header (ascending, then descending).
    page.get_by_role("link", name=re.compile(r"^rmse")).click()
    page.wait_for_url(re.compile(r"sort=metrics.rmse(&|$)"))
    first = page.locator("table.runs tbody tr td.name a").first
    assert first.text_content() == "run-000"
    page.get_by_role("link", name=re.compile(r"^rmse")).click()
    page.wait_for_url(re.compile(r"sort=metrics.rmse%20DESC|sort=metrics.rmse\+DESC"))
    assert page.locator("table.runs tbody tr td.name a").first.text_content() == "run-003"
    assert page.locator("th[aria-sort=descending]").count() == 1


@pytest.mark.browser
def test_pick_columns_in_chromium(ui: UI, page) -> None:
    exp, _ = seed(ui, 3)
    page.goto(f"{ui.url}/experiments/{exp}?cols=metrics.rmse")
    page.get_by_text("Columns (1)").click()
    page.locator("[data-find]").fill("dep")
    assert page.locator("label", has_text="acc").is_hidden()
    page.get_by_role("checkbox", name="depth").check()
    page.get_by_role("button", name="Show columns").click()
    page.wait_for_url(re.compile(r"cols=metrics.rmse%2Cparams.depth"))
    labels = page.locator("table.runs thead th a").all_text_contents()
    assert [t.strip() for t in labels][-2:] == ["rmse", "depth"]
    shot(page, "runs-columns")


@pytest.mark.browser
def test_select_runs_and_compare_in_chromium(ui: UI, page) -> None:
    exp, ids = seed(ui, 60)
    page.goto(f"{ui.url}/experiments/{exp}")
    compare = page.locator("#compare")
    assert compare.is_disabled()
    page.locator(f"input[value='{ids[59]}']").check()
    assert compare.is_disabled()
    page.locator(f"input[value='{ids[58]}']").check()
    assert compare.is_enabled()
    assert compare.text_content() == "Compare 2"
    # The selection survives paging: pick one on page 2 as well.
    page.get_by_role("link", name="Next →").first.click()
    page.locator(f"input[value='{ids[0]}']").check()
    assert "1 on this page" not in page.locator("#selection").text_content()
    assert "(2 on other pages)" in page.locator("#selection").text_content()
    compare.click()
    page.wait_for_url(re.compile(r"/compare\?runs="))
    chosen = parse_qs(urlsplit(page.url).query)["runs"][0].split(",")
    assert sorted(chosen) == sorted([ids[59], ids[58], ids[0]])


@pytest.mark.browser
def test_keyboard_in_chromium(ui: UI, page) -> None:
    exp, ids = seed(ui, 3)
    page.goto(f"{ui.url}/experiments/{exp}")
    page.locator("table.runs tbody tr").first.focus()
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.run") == ids[1]
    page.keyboard.press(" ")
    assert page.locator(f"input[value='{ids[1]}']").is_checked()
    assert "1 run selected" in page.locator("#selection").text_content()
    # "/" focuses the filter; headers are links, so Tab reaches and Enter follows them.
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "filter"
    page.locator("table.runs thead a", has_text="Status").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"sort=attributes.status"))
    # Enter on a row opens the run.
    page.locator("table.runs tbody tr").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/runs/[0-9a-f]{32}$"))


@pytest.mark.browser
def test_grouped_table_in_chromium(ui: UI, page) -> None:
    exp, _ = seed(ui, 9)
    page.goto(f"{ui.url}/experiments/{exp}")
    page.get_by_label("Group by").select_option("params.alpha")
    page.wait_for_url(re.compile(r"group=params.alpha"))
    assert page.locator("tr.group").count() == 3
    # A group's box selects its runs.
    page.locator("input[data-group-box='1']").check()
    assert "3 runs selected" in page.locator("#selection").text_content()
    shot(page, "runs-grouped")
