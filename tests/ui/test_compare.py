"""The compare page: params side by side with their differences, errors naming what is wrong,
escaping, the several-runs data endpoint, and (in Chromium) overlays and parallel coordinates."""

from __future__ import annotations

import json

import pytest

from mltrail.entities import Metric, RunBatch
from tests.ui.conftest import UI, HeldPlotly, shot

XSS = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


def _runs(ui: UI, n: int, metrics: bool = True) -> list[str]:
    exp = ui.client.create_experiment("wine")
    ids = []
    for i in range(n):
        run_id = ui.client.create_run(exp, run_name=f"run-{i}").info.run_id
        ui.client.log_batch(
            run_id,
            metrics=[Metric("loss", 1.0 / (s + 1) + i * 0.1, 1_000 + s * 100, s) for s in range(50)]
            + ([Metric("acc", 0.5 + i * 0.1, 1, 0)] if metrics else []),
            params={"lr": str(0.1 * (i + 1)), "depth": "6", "optimizer": ["adam", "sgd"][i % 2]},
        )
        ids.append(run_id)
    return ids


def test_compare_shows_params_side_by_side_and_marks_differences(ui: UI) -> None:
    ids = _runs(ui, 3)
    reply = ui.get("/compare?runs=" + ",".join(ids))
    assert reply.status_code == 200
    html = reply.text
    assert "Comparing 3 runs" in html
    for i, run_id in enumerate(ids):
        assert f'href="/runs/{run_id}"' in html
        assert f">run-{i}</a>" in html
    # depth is the same everywhere; lr and optimizer differ.
    assert '<tr data-same>\n    <th scope="row" class="key" title="depth">depth</th>' in html
    assert '<tr class="differs">\n    <th scope="row" class="key" title="lr">lr</th>' in html
    assert "2 of 3 params and 2 of 2 metrics differ" in html
    assert 'id="only-diff"' in html
    data = json.loads(html.split('id="compare-data">')[1].split("</script>")[0])
    assert [r["id"] for r in data["runs"]] == ids
    assert data["parcoords"] == ["lr", "optimizer"]
    assert data["runs"][1]["params"]["optimizer"] == "sgd"
    assert "plotly-" in html


def test_compare_takes_repeated_runs_parameters_too(ui: UI) -> None:
    ids = _runs(ui, 2)
    reply = ui.get(f"/compare?runs={ids[0]}&runs={ids[1]}&runs={ids[0]}")
    assert reply.status_code == 200
    assert "Comparing 2 runs" in reply.text


def test_compare_needs_two_runs(ui: UI) -> None:
    ids = _runs(ui, 1)
    for query in (f"?runs={ids[0]}", "?runs=", "", f"?runs={ids[0]},{ids[0]}"):
        reply = ui.get("/compare" + query)
        assert reply.status_code == 400, query
        assert "text/html" in reply.headers["content-type"]
        assert "comparing needs at least 2 runs" in reply.text
    assert ids[0] in ui.get(f"/compare?runs={ids[0]}").text


def test_compare_takes_at_most_a_hundred_runs(ui: UI) -> None:
    ids = [f"{i:032x}" for i in range(101)]
    reply = ui.get("/compare?runs=" + ",".join(ids))
    assert reply.status_code == 400
    assert "comparing takes at most 100 runs; got 101" in reply.text


def test_compare_names_unknown_runs(ui: UI) -> None:
    ids = _runs(ui, 2)
    ghost = "d" * 32
    reply = ui.get("/compare?runs=" + ",".join([*ids, ghost]))
    assert reply.status_code == 404
    assert f"no run with id {ghost}" in reply.text
    two = ui.get(f"/compare?runs={ids[0]},{ghost},{'e' * 32}")
    assert f"no runs with ids {ghost}, {'e' * 32}" in two.text


def test_compare_of_a_hundred_runs_works(ui: UI) -> None:
    exp = ui.client.create_experiment("many")
    ids = [ui.client.create_run(exp, run_name=f"r{i}").info.run_id for i in range(100)]
    reply = ui.get("/compare?runs=" + ",".join(ids))
    assert reply.status_code == 200
    assert "Comparing 100 runs" in reply.text
    assert "None of these runs logged metrics" in reply.text


def test_user_text_is_escaped_on_the_compare_page(ui: UI) -> None:
    exp = ui.client.create_experiment(XSS)
    ids = []
    for _ in range(2):
        run_id = ui.client.create_run(exp, run_name=XSS).info.run_id
        ui.client.store.write_batches(
            [RunBatch(run_id, metrics=[Metric(XSS, 1.0, 1, 0)], params={XSS: XSS})]
        )
        ids.append(run_id)
    html = ui.get("/compare?runs=" + ",".join(ids)).text
    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    data = json.loads(html.split('id="compare-data">')[1].split("</script>")[0])
    assert data["runs"][0]["name"] == XSS and data["metrics"] == [XSS]


def test_metrics_of_several_runs_in_one_request(ui: UI) -> None:
    ids = _runs(ui, 3)
    body = ui.get(f"/ui/data/metrics/loss?runs={','.join(ids)}&points=20").json()
    assert body["key"] == "loss"
    assert [s["run_id"] for s in body["runs"]] == ids
    for s in body["runs"]:
        assert s["total"] == 50 and len(s["value"]) <= 20
        assert s["step"][0] == 0 and s["step"][-1] == 49
    bad = ui.get("/ui/data/metrics/loss?runs=" + ",".join(["x" * 32] * 1 + ids))
    assert bad.status_code == 404
    assert bad.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.browser
def test_compare_page_draws_overlays_parcoords_and_scatter(ui: UI, page) -> None:
    ids = _runs(ui, 3)
    page.goto(f"{ui.url}/compare?runs={','.join(ids)}")
    page.wait_for_selector("#charts .js-plotly-plot path.js-line")
    loss = page.locator(".chart-card[data-key=loss] .js-plotly-plot")
    loss.locator(".scatterlayer .trace").nth(2).wait_for()
    assert loss.locator(".scatterlayer .trace").count() == 3  # one line per run
    assert page.locator(".chart-card[data-key=loss] .legendtext").nth(0).text_content() == "run-0"

    page.locator("#parcoords").scroll_into_view_if_needed()
    page.wait_for_selector("#parcoords .parcoords")
    labels = page.locator("#parcoords text.axis-title").all_text_contents()
    assert labels == ["lr", "optimizer", "acc"]
    page.wait_for_function("() => document.querySelectorAll('#scatter-chart .point').length === 3")

    rows = page.locator("#diff-tables table.params tbody tr")
    assert rows.count() == 3
    page.check("#only-diff")
    assert page.locator("#diff-tables table.params tbody tr:visible").count() == 2
    shot(page, "compare")


@pytest.mark.browser
def test_compare_overlays_are_sketched_before_plotly_then_upgraded(ui: UI, page) -> None:
    ids = _runs(ui, 3)
    page.add_init_script("localStorage.clear()")
    held = HeldPlotly(page)
    page.goto(f"{ui.url}/compare?runs={','.join(ids)}")
    sketch = page.locator(".chart-card[data-key=loss] svg.chart-sketch")
    sketch.locator("path").nth(2).wait_for()
    assert sketch.locator("path").count() == 3  # one line per run ...
    colors = [sketch.locator("path").nth(i).get_attribute("stroke") for i in range(3)]
    assert colors == page.evaluate("mt.charts.palette.slice(0, 3)")  # ... in the run's colour
    assert all(len(sketch.locator("path").nth(i).get_attribute("d") or "") > 300 for i in range(3))
    assert sketch.locator(".legend text").all_text_contents() == ["run-0", "run-1", "run-2"]
    assert "3 runs" in sketch.get_attribute("aria-label")
    # Parallel coordinates and the scatter have no sketch: they say they are coming.
    assert page.locator("#parcoords").text_content() == "Loading chart…"
    assert page.locator(".js-plotly-plot").count() == 0

    held.release()
    plot = page.locator(".chart-card[data-key=loss] .js-plotly-plot")
    plot.locator(".scatterlayer .trace").nth(2).wait_for()
    page.wait_for_function("() => !document.querySelector('svg.chart-sketch')")
    assert plot.locator(".scatterlayer .trace").count() == 3
    page.locator("#parcoords").scroll_into_view_if_needed()
    page.wait_for_selector("#parcoords .parcoords")


@pytest.mark.browser
def test_compare_charts_escape_run_names(ui: UI, page) -> None:
    exp = ui.client.create_experiment("x")
    ids = []
    for i in range(2):
        run_id = ui.client.create_run(exp, run_name=XSS).info.run_id
        ui.client.log_batch(
            run_id,
            metrics=[Metric("loss", float(s + i), s, s) for s in range(5)],
            params={"p": XSS + str(i)},
        )
        ids.append(run_id)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    held = HeldPlotly(page)
    page.goto(f"{ui.url}/compare?runs={','.join(ids)}")
    # In the sketch, the name is text: the legend's label (shortened) and its tooltip (whole).
    legend = page.locator("svg.chart-sketch .legend g").first
    legend.wait_for()
    assert legend.locator("title").text_content() == XSS
    assert XSS.startswith(legend.locator("text").text_content().rstrip("…"))
    assert page.locator("svg.chart-sketch image, svg.chart-sketch script").count() == 0
    assert page.locator("img[src=x]").count() == 0
    held.release()
    page.wait_for_selector("#charts .js-plotly-plot .legendtext")
    assert page.locator(".legendtext").first.text_content() == XSS
    page.locator("#scatter-chart").scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelectorAll('#scatter-chart .point').length === 2")
    page.hover("#scatter-chart .point >> nth=0", force=True)
    page.wait_for_selector("#scatter-chart .hovertext")
    assert XSS in page.locator("#scatter-chart .hovertext").text_content()
    assert page.locator("img[src=x]").count() == 0
    assert dialogs == []
