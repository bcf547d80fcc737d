"""The run page: what it shows, artifact browsing, previews and downloads, the metric data
endpoint, escaping, and (in Chromium) its charts."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from mltrail.entities import Metric, RunBatch
from tests.ui.conftest import UI, HeldPlotly, shot

#: How long a wait may take before the test calls it a hang (not a speed limit).
_HANG_GUARD_MS = 120_000

XSS = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def _run(ui: UI, name: str = "baseline", **kw):
    exp = ui.client.create_experiment(kw.pop("experiment", "wine"))
    run = ui.client.create_run(exp, run_name=name, **kw)
    return exp, run.info.run_id


def _points(key: str, n: int, t0: int = 1_700_000_000_000) -> list[Metric]:
    return [Metric(key, 1.0 / (i + 1), t0 + i * 1000, i) for i in range(n)]


def _file(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / "files" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# -- the page ------------------------------------------------------------------------------------


def test_run_page_shows_run_params_metrics_tags_and_code(ui: UI) -> None:
    exp, run_id = _run(ui, tags={"team": "vision", "mltrail.git.commit": "a" * 40})
    ui.client.log_batch(
        run_id,
        metrics=_points("loss", 5),
        params={"lr": "0.01", "depth": "6"},
        tags={
            "mltrail.git.branch": "main",
            "mltrail.git.dirty": "true",
            "mltrail.source.command": "python train.py --epochs 3",
            "mltrail.python": "3.11.9",
            "mltrail.platform": "Linux-6.1-x86_64",
        },
    )
    ui.client.set_terminated(run_id)
    reply = ui.get(f"/runs/{run_id}")
    assert reply.status_code == 200
    html = reply.text
    assert '<h1 class="run-title">baseline' in html
    assert f'href="/experiments/{exp}">wine</a>' in html
    assert "FINISHED" in html
    assert run_id in html
    assert ">lr</td>" in html and ">0.01</td>" in html
    assert ">loss</a>" in html and ">0.2</td>" in html  # latest value 1/5
    assert ">team</th><td>vision</td>" in html
    assert "System tags (" in html  # mltrail.* tags apart from the user's
    assert "aaaaaaaaaaaa" in html and ">dirty<" in html and "main" in html
    assert "python train.py --epochs 3" in html
    assert "3.11.9" in html and "Linux-6.1-x86_64" in html
    assert 'data-key="loss"' in html
    assert "plotly-" in html  # the page that charts loads plotly.js
    assert "Duration" in html


def test_code_links_the_recorded_diff_and_environment_lists_packages(
    ui: UI, tmp_path: Path
) -> None:
    _, run_id = _run(ui, tags={"mltrail.git.commit": "c" * 40, "mltrail.git.dirty": "true"})
    ui.client.log_artifact(run_id, _file(tmp_path, "git.diff", "+new line\n"), "_mltrail")
    packages = "".join(f"pkg{i}==1.{i}\n" for i in range(3))
    ui.client.log_artifact(run_id, _file(tmp_path, "requirements.txt", packages), "_mltrail")
    html = ui.get(f"/runs/{run_id}").text
    assert f'href="/runs/{run_id}?file=_mltrail%2Fgit.diff#artifacts"' in html
    assert "Packages (3)" in html and "pkg2==1.2" in html
    diff = ui.get(f"/runs/{run_id}?file=_mltrail%2Fgit.diff").text
    assert "+new line" in diff


def test_run_page_empty_states_read_as_intentional(ui: UI) -> None:
    _, run_id = _run(ui)
    html = ui.get(f"/runs/{run_id}").text
    assert "This run has no metrics to chart." in html
    assert "No artifacts." in html
    assert "No params logged." in html
    assert "No dataset versions recorded." in html
    assert "No model versions were registered from this run." in html
    assert 'id="chart-controls"' not in html


def test_unknown_run_is_a_404_page(ui: UI) -> None:
    reply = ui.get("/runs/" + "0" * 32)
    assert reply.status_code == 404
    assert "text/html" in reply.headers["content-type"]
    assert "0" * 32 in reply.text


def test_run_page_lists_datasets_and_models_made_from_the_run(
    ui: UI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mltrail.entities import DatasetRef

    _, run_id = _run(ui)
    ref = DatasetRef("data/train.csv", "b" * 64, "file", 1234)
    ui.client.store.log_run_datasets(run_id, "input", [ref])
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\1\2\3")
    (model / "MLmodel").write_text("flavors: {}\n")
    ui.client.log_artifact(run_id, model)
    ui.client.register_model(f"runs:/{run_id}/model", "wine-clf")
    html = ui.get(f"/runs/{run_id}").text
    assert 'href="/datasets/data/train.csv"' in html
    assert "bbbbbbbbbbbb" in html
    assert 'href="/models/wine-clf/versions/1">v1</a>' in html


# -- artifacts -----------------------------------------------------------------------------------


def test_artifact_folders_are_browsable(ui: UI, tmp_path: Path) -> None:
    _, run_id = _run(ui)
    _file(tmp_path, "out/plots/a.txt", "a")
    _file(tmp_path, "out/report.md", "# report")
    ui.client.log_artifacts(run_id, tmp_path / "files" / "out")
    top = ui.get(f"/runs/{run_id}").text
    assert "?path=plots#artifacts" in top and ">plots/</a>" in top
    assert ">report.md</a>" in top
    inside = ui.get(f"/runs/{run_id}?path=plots").text
    assert ">a.txt</a>" in inside
    assert ">report.md</a>" not in inside
    assert ui.get(f"/runs/{run_id}?path=nope").status_code == 404


def test_previews_of_text_csv_json_and_images(ui: UI, tmp_path: Path) -> None:
    _, run_id = _run(ui)
    rows = "a,b\n" + "".join(f"r{i},{i * i}\n" for i in range(150))
    for name, data in [
        ("notes.txt", "hello <b>world</b>"),
        ("table.csv", rows),
        ("config.json", '{"b": 1, "a": [1, 2]}'),
        ("plot.png", PNG),
        ("blob.bin", b"\0\1\2\3"),
    ]:
        ui.client.log_artifact(run_id, _file(tmp_path, name, data))
    base = f"/runs/{run_id}/artifacts/preview?path="

    text = ui.get(base + "notes.txt").text
    assert "hello &lt;b&gt;world&lt;/b&gt;" in text

    csv = ui.get(base + "table.csv").text
    assert '<th title="a">a</th>' in csv
    assert '<td title="r99">r99</td>' in csv  # row 100 is shown ...
    assert "r100" not in csv  # ... row 101 is not
    assert "Showing the first 100 rows" in csv

    js = ui.get(base + "config.json").text
    assert "{\n  &#34;b&#34;: 1,\n  &#34;a&#34;: [\n    1,\n    2\n  ]\n}" in js

    image = ui.get(base + "plot.png").text
    assert f'src="/runs/{run_id}/artifacts/raw?path=plot.png&amp;inline=1"' in image

    assert "A binary file: no preview." in ui.get(base + "blob.bin").text

    # The page itself shows a preview too (links work without JavaScript).
    page = ui.get(f"/runs/{run_id}?file=notes.txt").text
    assert "hello &lt;b&gt;world&lt;/b&gt;" in page


def test_large_text_preview_is_capped(ui: UI, tmp_path: Path) -> None:
    _, run_id = _run(ui)
    ui.client.log_artifact(run_id, _file(tmp_path, "big.log", "x" * (3 << 20)))
    html = ui.get(f"/runs/{run_id}/artifacts/preview?path=big.log").text
    assert "Showing the first 1 MB" in html
    assert len(html) < (1 << 20) + 10_000


def test_download_streams_the_bytes_as_an_attachment(ui: UI, tmp_path: Path) -> None:
    _, run_id = _run(ui)
    data = bytes(range(256)) * 4000
    ui.client.log_artifact(run_id, _file(tmp_path, "weights.bin", data), "model")
    reply = ui.get(f"/runs/{run_id}/artifacts/raw?path=model/weights.bin")
    assert reply.status_code == 200
    assert reply.content == data
    assert reply.headers["content-type"] == "application/octet-stream"
    assert reply.headers["content-disposition"].startswith("attachment;")
    assert 'filename="weights.bin"' in reply.headers["content-disposition"]
    assert reply.headers["x-content-type-options"] == "nosniff"
    again = ui.get(
        f"/runs/{run_id}/artifacts/raw?path=model/weights.bin",
        headers={"If-None-Match": reply.headers["etag"]},
    )
    assert again.status_code == 304 and again.content == b""


def test_images_inline_only_as_images_and_svg_sandboxed(ui: UI, tmp_path: Path) -> None:
    _, run_id = _run(ui)
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    ui.client.log_artifact(run_id, _file(tmp_path, "plot.png", PNG))
    ui.client.log_artifact(run_id, _file(tmp_path, "evil.svg", svg))
    ui.client.log_artifact(run_id, _file(tmp_path, "page.html", "<script>alert(1)</script>"))
    raw = f"/runs/{run_id}/artifacts/raw?inline=1&path="
    png = ui.get(raw + "plot.png")
    assert png.headers["content-type"] == "image/png"
    assert png.headers["content-disposition"].startswith("inline")
    assert png.content == PNG
    evil = ui.get(raw + "evil.svg")
    assert evil.headers["content-type"].startswith("image/svg+xml")
    assert evil.headers["content-security-policy"].startswith("sandbox")
    html = ui.get(raw + "page.html")  # never text/html, whatever it asks
    assert html.headers["content-type"] == "application/octet-stream"
    assert html.headers["content-disposition"].startswith("attachment")


@pytest.mark.parametrize(
    "path",
    ["../mltrail.db", "a/../../x", "/etc/passwd", "%2e%2e/secret", "..\\x", "C:/x"],
)
def test_artifact_paths_that_traverse_are_refused(ui: UI, tmp_path: Path, path: str) -> None:
    _, run_id = _run(ui)
    ui.client.log_artifact(run_id, _file(tmp_path, "a.txt", "a"))
    for route in ("artifacts/raw", "artifacts/preview"):
        reply = ui.get(f"/runs/{run_id}/{route}", params={"path": path})
        assert reply.status_code == 400, (route, path, reply.status_code)
    page = ui.get(f"/runs/{run_id}", params={"file": path})
    assert page.status_code == 400


def test_another_runs_artifact_cannot_be_read_through_this_run(ui: UI, tmp_path: Path) -> None:
    _, first = _run(ui)
    _, second = _run(ui, "other", experiment="other")
    ui.client.log_artifact(second, _file(tmp_path, "secret.txt", "s3cret"))
    assert ui.get(f"/runs/{first}/artifacts/raw?path=secret.txt").status_code == 404


# -- escaping ------------------------------------------------------------------------------------


def test_user_text_is_escaped_on_the_run_page(ui: UI, tmp_path: Path) -> None:
    _, run_id = _run(ui, name=XSS)
    # Keys with such characters are refused by the client; a store written some other way (an
    # old version, an import) may still hold them, so they go in through the store directly.
    ui.client.store.write_batches(
        [RunBatch(run_id, metrics=[Metric(XSS, 1.0, 1, 0)], params={XSS: XSS}, tags={XSS: XSS})]
    )
    ui.client.log_artifact(run_id, _file(tmp_path, XSS.replace("/", "_") + ".txt", XSS))
    html = ui.get(f"/runs/{run_id}").text
    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The chart data rides in a JSON script block: no "</script>" can close it early.
    block = html.split('<script type="application/json" id="run-data">')[1].split("</script>")[0]
    assert json.loads(block)["keys"] == [XSS]
    name = XSS.replace("/", "_") + ".txt"
    preview = ui.get(f"/runs/{run_id}/artifacts/preview", params={"path": name}).text
    assert "<script>" not in preview and "<img src=x" not in preview


# -- the data endpoint ---------------------------------------------------------------------------


def test_metric_data_is_downsampled_keeping_ends_and_extremes(ui: UI) -> None:
    _, run_id = _run(ui)
    n = 50_000
    points = [
        Metric("loss", math.sin(i / 500) + (5.0 if i == 31_337 else 0.0), 1_000_000 + i * 7, i)
        for i in range(n)
    ]
    points[12_345] = Metric("loss", -9.0, points[12_345].timestamp, 12_345)
    ui.client.log_batch(run_id, metrics=points)
    reply = ui.get(f"/ui/data/runs/{run_id}/metrics/loss", params={"points": 500})
    assert reply.status_code == 200
    body = reply.json()
    assert body["total"] == n and body["downsampled"] is True
    assert len(body["value"]) <= 500
    assert body["step"][0] == 0 and body["step"][-1] == n - 1
    assert body["time"][0] == 1_000_000 and body["time"][-1] == 1_000_000 + (n - 1) * 7
    assert min(body["value"]) == -9.0
    assert max(body["value"]) == pytest.approx(max(p.value for p in points))
    assert body["step"][body["value"].index(-9.0)] == 12_345
    assert body["time"][body["value"].index(-9.0)] == points[12_345].timestamp
    assert body["step"] == sorted(body["step"])


def test_metric_data_small_series_whole_and_odd_values_null(ui: UI) -> None:
    _, run_id = _run(ui)
    values = [1.0, math.nan, math.inf, -math.inf, 2.5]
    ui.client.log_batch(
        run_id, metrics=[Metric("a/b", v, 100 + i, i) for i, v in enumerate(values)]
    )
    body = ui.get(f"/ui/data/runs/{run_id}/metrics/a%2Fb").json()
    assert body["key"] == "a/b"
    assert body["total"] == 5 and body["downsampled"] is False
    assert body["value"] == [1.0, None, None, None, 2.5]
    assert body["step"] == [0, 1, 2, 3, 4]
    assert body["time"] == [100, 101, 102, 103, 104]


def test_metric_data_errors_are_json(ui: UI) -> None:
    _, run_id = _run(ui)
    missing = ui.get("/ui/data/runs/" + "f" * 32 + "/metrics/loss")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    bad = ui.get(f"/ui/data/runs/{run_id}/metrics/loss", params={"points": 1})
    assert bad.status_code == 400
    assert "points must be between" in bad.json()["message"]
    empty = ui.get(f"/ui/data/runs/{run_id}/metrics/never-logged").json()
    assert empty["total"] == 0 and empty["value"] == []


@pytest.mark.slow
@pytest.mark.long
def test_a_million_points_come_back_downsampled_with_ends_and_extremes(ui: UI) -> None:
    import httpx

    _, run_id = _run(ui)
    n = 1_000_000
    t0 = 1_700_000_000_000
    for start in range(0, n, 200_000):
        batch = [
            Metric("loss", math.sin(i / 1000) + i * 1e-6, t0 + i * 10, i)
            for i in range(start, start + 200_000)
        ]
        ui.client.store.write_batches([RunBatch(run_id, metrics=batch)])
    # How fast is measured by benchmarks/ui_bench.py; this checks what comes back.
    body = httpx.get(f"{ui.url}/ui/data/runs/{run_id}/metrics/loss").json()
    assert body["total"] == n and len(body["value"]) <= 2000
    assert body["step"][0] == 0 and body["step"][-1] == n - 1
    values = [math.sin(i / 1000) + i * 1e-6 for i in range(n)]
    assert min(body["value"]) == pytest.approx(min(values))
    assert max(body["value"]) == pytest.approx(max(values))


# -- in the browser ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.browser
def test_a_million_point_metric_draws_downsampled(ui: UI, page) -> None:
    _, run_id = _run(ui)
    t0 = 1_700_000_000_000
    for start in range(0, 1_000_000, 250_000):
        batch = [
            Metric("loss", math.sin(i / 1000) + i * 1e-6, t0 + i * 10, i)
            for i in range(start, start + 250_000)
        ]
        ui.client.store.write_batches([RunBatch(run_id, metrics=batch)])
    # What is drawn is checked, not how fast (that is the UI benchmark's): the waits only guard
    # against a hang, generously, since a busy 2-core machine took over 15 s for the first paint.
    held = HeldPlotly(page)
    page.goto(f"{ui.url}/runs/{run_id}")
    sketch = page.locator("svg.chart-sketch")
    sketch.locator("path").wait_for(timeout=_HANG_GUARD_MS)
    # The first paint, before plotly.js: the downsampled line as one SVG path.
    label = sketch.get_attribute("aria-label") or ""
    assert label.startswith("Chart of loss: step 0 to 1M"), label
    assert len(sketch.locator("path").get_attribute("d") or "") > 1000
    note = page.locator(".chart-note").text_content() or ""
    shown = re.search(r"([\d,]+) of 1,000,000 points shown", note)
    assert shown is not None, note
    drawn = int(shown.group(1).replace(",", ""))
    assert 1000 < drawn < 1_000_000
    held.release()
    plot = page.locator("#charts .js-plotly-plot")
    plot.locator("path.js-line").first.wait_for(timeout=_HANG_GUARD_MS)
    assert page.locator("svg.chart-sketch").count() == 0
    # plotly got the downsampled series, not a million points.
    assert plot.first.evaluate("el => el.data[0].x.length") <= drawn


@pytest.mark.browser
def test_run_page_draws_charts_toggles_log_and_previews(ui: UI, page, tmp_path: Path) -> None:
    _, run_id = _run(ui, name="chart run")
    ui.client.log_batch(
        run_id,
        metrics=_points("loss", 300) + [Metric("acc", i / 300, 1 + i, i) for i in range(300)],
        params={"lr": "0.01"},
    )
    ui.client.log_artifact(run_id, _file(tmp_path, "notes.txt", "preview me"))
    ui.client.log_artifact(run_id, _file(tmp_path, "table.csv", "a,b\n1,2\n"))
    page.goto(f"{ui.url}/runs/{run_id}")
    page.wait_for_selector("#charts .js-plotly-plot .scatterlayer path.js-line")
    assert page.locator("#charts .js-plotly-plot").count() == 2
    assert "300 points" in page.locator(".chart-note").first.text_content()

    page.check("[data-control=log]")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#charts .js-plotly-plot')]"
        ".every(el => el.layout.yaxis.type === 'log')"
    )
    page.select_option("[data-control=x]", "relative")
    page.wait_for_function(
        "() => document.querySelector('#charts .js-plotly-plot').layout.xaxis.title.text"
        ".startsWith('relative time')"
    )
    page.fill("[data-control=smoothing]", "0.6")
    page.wait_for_function(
        "() => document.querySelector('#charts .js-plotly-plot').data.length === 2"
    )
    # After all the redraws the lines are still drawn (raw faint, smoothed on top).
    lines = page.locator("#charts .js-plotly-plot path.js-line")
    assert lines.count() == 4
    assert all(len(lines.nth(i).get_attribute("d") or "") > 100 for i in range(4))

    page.click("a[data-preview='table.csv']")
    page.wait_for_selector("#artifact-preview .preview-table td")
    assert page.locator("#artifact-preview th").first.text_content() == "a"
    assert "file=table.csv" in page.url
    page.click("a[data-preview='notes.txt']")
    page.wait_for_selector("#artifact-preview pre.artifact-text")
    assert page.locator("#artifact-preview pre").text_content() == "preview me"
    shot(page, "run")


@pytest.mark.browser
def test_run_page_sketches_charts_before_plotly_and_then_upgrades_them(ui: UI, page) -> None:
    _, run_id = _run(ui, name="sketch run")
    ui.client.log_batch(
        run_id,
        metrics=_points("loss", 300) + [Metric("acc", i / 300, 1 + i, i) for i in range(300)],
    )
    page.add_init_script("localStorage.clear()")
    held = HeldPlotly(page)
    page.goto(f"{ui.url}/runs/{run_id}")
    loss = page.locator(".chart-card[data-key=loss]")
    sketch = loss.locator("svg.chart-sketch")
    sketch.locator("path").wait_for()
    assert sketch.get_attribute("role") == "img"
    label = sketch.get_attribute("aria-label") or ""
    assert label.startswith("Chart of loss: step 0 to 299, values 0.00") and "to 1" in label
    assert len(sketch.locator("path").get_attribute("d") or "") > 1000  # 300 points, one path
    assert sketch.locator("text").count() >= 5  # tick labels and the axis title
    assert "step" in sketch.locator("text.title").text_content()
    assert "300 points" in loss.locator(".chart-note").text_content()
    assert page.locator(".js-plotly-plot").count() == 0
    height = loss.bounding_box()["height"]

    # The controls redraw the sketch while plotly.js is on its way.
    page.check("[data-control=log]")
    page.wait_for_function(
        "() => document.querySelector('[data-key=loss] svg.chart-sketch')"
        ".getAttribute('aria-label').endsWith('(log scale)')"
    )
    assert len(loss.locator("svg.chart-sketch path").get_attribute("d") or "") > 1000

    held.release()
    loss.locator(".js-plotly-plot .scatterlayer .trace path.js-line").wait_for()
    page.wait_for_function("() => !document.querySelector('svg.chart-sketch')")
    assert page.locator("#charts .js-plotly-plot").count() == 2
    plot = loss.locator(".js-plotly-plot")
    assert plot.evaluate("el => el.layout.yaxis.type") == "log"  # the choice made meanwhile
    assert loss.bounding_box()["height"] == height  # the chart took the sketch's place


@pytest.mark.browser
def test_run_page_charts_escape_metric_keys(ui: UI, page) -> None:
    _, run_id = _run(ui, name=XSS)
    ui.client.store.write_batches(
        [RunBatch(run_id, metrics=[Metric(XSS, float(i), i, i) for i in range(10)])]
    )
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    held = HeldPlotly(page)
    page.goto(f"{ui.url}/runs/{run_id}")
    page.wait_for_selector("svg.chart-sketch path")
    label = page.locator("svg.chart-sketch").get_attribute("aria-label") or ""
    assert label.startswith(f"Chart of {XSS}: step 0 to 9")
    held.release()
    page.wait_for_selector("#charts .js-plotly-plot")
    assert page.locator(".chart-title").text_content() == XSS
    assert page.locator("img[src=x]").count() == 0
    assert dialogs == []


def test_models_the_user_may_not_see_are_not_listed(tmp_path: Path) -> None:
    pytest.importorskip("jinja2")
    import httpx

    from mltrail import MltrailClient
    from mltrail.server.app import ServerSettings
    from mltrail.store import open_store
    from tests.live import serve
    from tests.ui.seed_models import seed

    uri = f"sqlite:///{tmp_path / 'auth.db'}"
    objects = str(tmp_path / "objects")
    client = MltrailClient(uri, objects=objects)
    s = seed(client, tmp_path)
    client.close()
    store = open_store(uri)
    store.set_permission("bob", "model", "wine-rf", "none")
    _, bob = store.create_token("bob", "read")
    _, alice = store.create_token("alice", "admin")
    store.close()
    with serve(ServerSettings(uri, objects, auth=True, access_log=False)) as url:
        for token, shown in ((alice, True), (bob, False)):
            page = httpx.get(f"{url}/runs/{s.train1}", cookies={"mltrail_token": token})
            assert page.status_code == 200
            assert ('href="/models/wine-rf/versions/1"' in page.text) is shown
            found = httpx.get(
                f"{url}/api/v1/model-versions",
                params={"run_id": s.train1},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert found.status_code == 200
            versions = found.json()["versions"]
            assert [(v["name"], v["version"]) for v in versions] == (
                [("wine-rf", 1)] if shown else []
            )


def test_a_crashed_run_shows_killed_with_the_reason_on_its_page_and_in_the_table(
    ui: UI,
) -> None:
    import subprocess
    import sys

    from mltrail.tracking.liveness import TAG_PROCESS

    # The tag of a process that has exited: what a SIGKILLed training job leaves on its run.
    script = "from mltrail.process import owner_tag; print(owner_tag())"
    gone = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    exp, run_id = _run(ui, "doomed")
    ui.client.store.write_batches([RunBatch(run_id, tags={TAG_PROCESS: gone.stdout.strip()})])
    page = ui.get(f"/runs/{run_id}").text
    assert "KILLED" in page and "ended without ending the run" in page
    assert "RUNNING" not in page
    table = ui.get(f"/experiments/{exp}").text
    assert "status-KILLED" in table and "status-RUNNING" not in table
