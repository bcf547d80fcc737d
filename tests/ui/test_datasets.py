"""The Datasets pages: every tracked path, and the versions of one with the runs that used them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mltrail.entities import DatasetRef
from tests.ui.conftest import UI, shot
from tests.ui.seed_models import IMAGES, PREPARED, RAW, seed

XSS = '"><img src=x onerror=alert(1)>'


def test_datasets_list_counts_versions_and_runs(ui: UI, tmp_path: Path) -> None:
    s = seed(ui.client, tmp_path)
    # A newer version of the raw data, read by a new run.
    time.sleep(0.01)
    newer = DatasetRef(RAW.path, "4" * 64, "file", 4096)
    run = ui.client.create_run(s.experiment, run_name="prepare-2").info.run_id
    ui.client.store.log_run_datasets(run, "input", [newer])
    html = ui.get("/datasets").text
    for d in (RAW, PREPARED, IMAGES):
        assert f'href="/datasets/{d.path}"' in html
    row = html[html.index('href="/datasets/data/raw.csv"') :]
    row = row[: row.index("</tr>")]
    # 2 versions, the latest is the one logged last, 2 runs read it, none wrote it.
    assert '<td class="n">2</td>' in row
    assert "4444444444" in row and "4 KB" in row
    assert row.count('<td class="n">2</td>') == 3  # versions, runs, readers
    assert '<td class="n">0</td>' in row  # writers
    assert "/lineage?target=data/raw.csv%40" + "4" * 64 in row
    prepared = html[html.index('href="/datasets/data/prepared.csv"') :]
    prepared = prepared[: prepared.index("</tr>")]
    assert '<td class="n">3</td>' in prepared  # prepare wrote it, train-1 and train-2 read it
    assert "/datasets?q=" not in html
    assert "data/images" not in ui.get("/datasets?q=raw").text


def test_no_datasets_yet(ui: UI) -> None:
    assert "No run has recorded a dataset yet" in ui.get("/datasets").text


def test_dataset_page_lists_versions_with_consumers_and_producers(ui: UI, tmp_path: Path) -> None:
    s = seed(ui.client, tmp_path)
    page = ui.get("/datasets/data/prepared.csv")
    assert page.status_code == 200
    html = page.text
    assert "2" * 64 in html
    assert "1.46 KB" in html and "(1500 bytes)" in html
    produced = html[html.index("Produced by") : html.index("Consumed by")]
    assert f'href="/runs/{s.prepare}"' in produced and ">prepare</a>" in produced
    consumed = html[html.index("Consumed by") :]
    assert f'href="/runs/{s.train1}"' in consumed and f'href="/runs/{s.train2}"' in consumed
    assert "training" in consumed  # the context the runs gave
    assert 'href="/lineage?target=data/prepared.csv%40' + "2" * 64 + '"' in html
    folder = ui.get("/datasets/data/images").text
    assert "folder" in folder and "<td>120</td>" in folder and "3 MB" in folder
    # A version picked from elsewhere is marked.
    chosen = ui.get(f"/datasets/data/images?hash={IMAGES.hash}").text
    assert 'class="card version selected"' in chosen
    missing = ui.get("/datasets/data/nothing.csv")
    assert missing.status_code == 404
    assert "no run read or wrote a dataset at &#39;data/nothing.csv&#39;" in missing.text


def test_dataset_versions_are_newest_first(ui: UI) -> None:
    run = ui.client.create_run("0", run_name="r").info.run_id
    for h in ("a", "b", "c"):
        ui.client.store.log_run_datasets(run, "input", [DatasetRef("d.csv", h * 64, "file", 1)])
        time.sleep(0.005)
    html = ui.get("/datasets/d.csv").text
    assert html.index("c" * 64) < html.index("b" * 64) < html.index("a" * 64)
    assert html.count("latest</span>") == 1


def test_dataset_paths_and_run_names_are_escaped(ui: UI) -> None:
    path = "data/<script>alert(1)</script>/" + XSS.replace("/", "_")
    run = ui.client.create_run("0", run_name="<script>alert(2)</script>").info.run_id
    ui.client.store.log_run_datasets(run, "output", [DatasetRef(path, "5" * 64, "file", 3)])
    listing = ui.get("/datasets").text
    assert "<script>alert" not in listing and "<img src=x" not in listing
    from urllib.parse import quote

    page = ui.get("/datasets/" + quote(path))
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page.text


def test_hidden_experiments_do_not_count(tmp_path: Path) -> None:
    pytest.importorskip("jinja2")
    import httpx

    from mltrail.server.app import ServerSettings
    from mltrail.store import open_store
    from tests.live import serve

    uri = f"sqlite:///{tmp_path / 'auth.db'}"
    store = open_store(uri)
    secret = store.create_experiment("secret")
    hidden = store.create_run(secret, "hidden", "root", 1).info.run_id
    store.log_run_datasets(hidden, "input", [IMAGES, RAW])
    shown = store.create_run("0", "shown", "root", 2).info.run_id
    store.log_run_datasets(shown, "input", [RAW])
    store.set_permission("bob", "experiment", secret, "none")
    _, bob = store.create_token("bob", "read")
    store.close()
    with serve(ServerSettings(uri, str(tmp_path / "objects"), auth=True, access_log=False)) as url:
        cookies = {"mltrail_token": bob}
        listing = httpx.get(url + "/datasets", cookies=cookies).text
        assert "data/raw.csv" in listing and "data/images" not in listing
        raw = httpx.get(url + "/datasets/data/raw.csv", cookies=cookies).text
        assert ">shown</a>" in raw and "hidden" not in raw
        images = httpx.get(url + "/datasets/data/images", cookies=cookies)
        assert images.status_code == 404


@pytest.mark.browser
def test_datasets_pages_in_chromium(ui: UI, page, tmp_path: Path) -> None:
    s = seed(ui.client, tmp_path)
    page.goto(ui.url + "/datasets")
    assert page.title() == "Datasets · mltrail"
    page.get_by_role("link", name="data/prepared.csv").wait_for()
    shot(page, "datasets")
    page.get_by_role("link", name="data/prepared.csv").click()
    page.wait_for_url("**/datasets/data/prepared.csv")
    page.get_by_role("heading", name="Consumed by").wait_for()
    page.get_by_role("link", name="train-1").click()
    page.wait_for_url(f"**/runs/{s.train1}")
