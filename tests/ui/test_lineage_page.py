"""The Lineage page: a target's graph as SVG with clickable nodes, and bad targets inline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mltrail.entities import DatasetRef
from mltrail.lineage import Edge
from mltrail.ui.pages.lineage import layers
from tests.ui.conftest import UI, shot
from tests.ui.seed_models import IMAGES, PREPARED, RAW, seed

XSS = '"><img src=x onerror=alert(1)>'


def _nodes(html: str) -> dict[str, str]:
    """data-key → href of every node drawn in the SVG."""
    svg = html[html.index("<svg") : html.index("</svg>")]
    found = re.findall(r'<a href="([^"]*)" class="node[^"]*"\s+data-key="([^"]*)"', svg)
    return {key: href for href, key in found}


def test_lineage_of_a_model_alias_draws_data_runs_versions_and_alias(
    ui: UI, tmp_path: Path
) -> None:
    s = seed(ui.client, tmp_path)
    page = ui.get("/lineage?target=models:/wine-rf@production")
    assert page.status_code == 200
    nodes = _nodes(page.text)
    assert nodes["alias:wine-rf@production"] == "/models/wine-rf/versions/1"
    assert nodes["model:wine-rf/1"] == "/models/wine-rf/versions/1"
    assert nodes[f"run:{s.train1}"] == f"/runs/{s.train1}"
    assert nodes[f"run:{s.prepare}"] == f"/runs/{s.prepare}"
    prepared = f"dataset:{PREPARED.path}@{PREPARED.hash}"
    assert nodes[prepared] == f"/datasets/data/prepared.csv?hash={PREPARED.hash}#v-{'2' * 12}"
    assert f"dataset:{RAW.path}@{RAW.hash}" in nodes
    assert f"dataset:{IMAGES.path}@{IMAGES.hash}" in nodes
    # Up and down from the target only: the other run that read the same data is not drawn.
    assert f"run:{s.train2}" not in nodes
    # Edges point the way data flows.
    assert f'data-src="{prepared}" data-dst="run:{s.train1}"' in page.text
    assert f'data-src="run:{s.train1}" data-dst="model:wine-rf/1"' in page.text
    assert 'data-src="model:wine-rf/1" data-dst="alias:wine-rf@production"' in page.text
    # The target is marked, and the table below lists every node.
    assert 'class="node kind-alias root"' in page.text
    assert "graph from here" in page.text
    down = _nodes(ui.get("/lineage?target=models:/wine-rf/1&direction=down").text)
    assert set(down) == {"model:wine-rf/1", "alias:wine-rf@production"}


def test_layers_follow_the_data_left_to_right(ui: UI, tmp_path: Path) -> None:
    s = seed(ui.client, tmp_path)
    html = ui.get("/lineage?target=models:/wine-rf/1&direction=up").text
    drawn = re.findall(r'data-key="([^"]*)"[^>]*translate\((\d+),', html)
    xs = {key: int(x) for key, x in drawn}
    raw = xs[f"dataset:{RAW.path}@{RAW.hash}"]
    prep = xs[f"run:{s.prepare}"]
    prepared = xs[f"dataset:{PREPARED.path}@{PREPARED.hash}"]
    train = xs[f"run:{s.train1}"]
    model = xs["model:wine-rf/1"]
    assert raw < prep < prepared < train < model
    # The images folder feeds train-1 only, so it sits in the column just before it.
    assert xs[f"dataset:{IMAGES.path}@{IMAGES.hash}"] == prepared


def test_layers_survive_cycles_and_pull_sources_right() -> None:
    edges = [
        Edge("d1", "r1", "input"),
        Edge("r1", "d2", "output"),
        Edge("d2", "r2", "input"),
        Edge("late", "r2", "input"),
        Edge("r2", "d2", "output"),  # a run that rewrites what it read
    ]
    got = layers(["d1", "r1", "d2", "r2", "late"], edges)
    assert got["d1"] < got["r1"] < got["d2"] < got["r2"]
    assert got["late"] == got["r2"] - 1


def test_lineage_of_a_dataset_version_and_of_a_whole_path(ui: UI, tmp_path: Path) -> None:
    s = seed(ui.client, tmp_path)
    one = ui.get(f"/lineage?target=data/raw.csv@{RAW.hash[:8]}")
    assert one.status_code == 200
    nodes = _nodes(one.text)
    assert f"run:{s.prepare}" in nodes and "alias:wine-rf@champion" in nodes
    assert 'class="node kind-dataset root"' in one.text
    whole = ui.get("/lineage?target=data/prepared.csv&direction=down&depth=1")
    assert whole.status_code == 200
    assert f"run:{s.train1}" in _nodes(whole.text)
    by_run = ui.get(f"/lineage?target={s.train2[:8]}").text
    assert "model:wine-rf/2" in _nodes(by_run)


def test_a_bad_target_shows_the_error_inline(ui: UI, tmp_path: Path) -> None:
    seed(ui.client, tmp_path)
    empty = ui.get("/lineage")
    assert empty.status_code == 200 and "<svg" not in empty.text
    assert "models:/NAME@ALIAS" in empty.text  # the forms a target may take
    for target, status, message in (
        ("models:/nope@production", 404, "nope"),
        ("models:/wine-rf@nope", 404, "nope"),
        ("data/missing.csv", 404, "no run recorded dataset"),
        ("s3://bucket/x", 400, "scheme"),
        ("../etc", 400, "relative to the project root"),
    ):
        page = ui.get("/lineage", params={"target": target})
        assert page.status_code == status, target
        assert 'id="target-error" role="alert"' in page.text, target
        assert message in page.text, target
        assert 'aria-invalid="true"' in page.text
        assert "<svg" not in page.text
    bad_depth = ui.get("/lineage", params={"target": "data/raw.csv", "depth": "-1"})
    assert bad_depth.status_code == 400 and "depth" in bad_depth.text


def test_lineage_text_is_escaped(ui: UI) -> None:
    path = "data/" + XSS.replace("/", "_") + "<script>alert(1)</script>"
    run = ui.client.create_run("0", run_name="<script>alert(2)</script>").info.run_id
    ui.client.store.log_run_datasets(run, "input", [DatasetRef(path, "6" * 64, "file", 1)])
    html = ui.get("/lineage", params={"target": path}).text
    assert "<svg" in html
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html


@pytest.mark.browser
def test_lineage_graph_in_chromium(ui: UI, page, tmp_path: Path) -> None:
    s = seed(ui.client, tmp_path)
    page.goto(ui.url + "/lineage")
    page.fill("#target", "models:/wine-rf@production")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/lineage?target=*")
    graph = page.locator("svg#lineage-graph")
    graph.wait_for()
    assert graph.locator("a.node").count() >= 7
    # Hovering a node lights its edges.
    page.hover(f'a.node[data-key="run:{s.train1}"]')
    assert page.locator("path.edge.lit").count() >= 3
    shot(page, "lineage")
    # Clicking a node opens its page.
    page.locator('a.node[data-key="model:wine-rf/1"]').click()
    page.wait_for_url("**/models/wine-rf/versions/1")
    page.go_back()
    page.locator(f'a.node[data-key="dataset:{RAW.path}@{RAW.hash}"]').click()
    page.wait_for_url("**/datasets/data/raw.csv?hash=*")
    # A bad target in the form is shown next to it.
    page.goto(ui.url + "/lineage")
    page.fill("#target", "models:/nope@x")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("alert").wait_for()


def test_what_only_a_hidden_run_leads_to_is_left_out(tmp_path: Path) -> None:
    pytest.importorskip("jinja2")
    import httpx

    from mltrail.server.app import ServerSettings
    from mltrail.store import open_store
    from tests.live import serve

    secret_out = DatasetRef("data/secret.csv", "5" * 64, "file", 10)
    uri = f"sqlite:///{tmp_path / 'auth.db'}"
    store = open_store(uri)
    secret = store.create_experiment("secret")
    # raw.csv → hidden run → secret.csv → later (a visible run), and raw.csv → shown.
    hidden = store.create_run(secret, "hidden", "root", 1).info.run_id
    store.log_run_datasets(hidden, "input", [RAW])
    store.log_run_datasets(hidden, "output", [secret_out])
    later = store.create_run("0", "later", "root", 2).info.run_id
    store.log_run_datasets(later, "input", [secret_out])
    shown = store.create_run("0", "shown", "root", 3).info.run_id
    store.log_run_datasets(shown, "input", [RAW])
    store.set_permission("bob", "experiment", secret, "none")
    _, bob = store.create_token("bob", "read")
    _, alice = store.create_token("alice", "admin")
    store.close()
    with serve(ServerSettings(uri, str(tmp_path / "objects"), auth=True, access_log=False)) as url:
        target = {"target": RAW.path, "direction": "down"}
        everything = _nodes(
            httpx.get(url + "/lineage", params=target, cookies={"mltrail_token": alice}).text
        )
        assert f"dataset:{secret_out.path}@{secret_out.hash}" in everything
        assert f"run:{later}" in everything
        page = httpx.get(url + "/lineage", params=target, cookies={"mltrail_token": bob})
        assert page.status_code == 200
        nodes = _nodes(page.text)
        assert set(nodes) == {f"dataset:{RAW.path}@{RAW.hash}", f"run:{shown}"}
        assert "data/secret.csv" not in page.text and later not in page.text
        assert "3 nodes you may not see are left out" in page.text
