"""The UI's plumbing: the experiments page, static files, errors as pages, sign-in, escaping."""

from __future__ import annotations

import pytest

from tests.ui.conftest import UI, shot


def test_experiments_page_lists_experiments_with_run_counts(ui: UI) -> None:
    exp = ui.client.create_experiment("wine")
    for _ in range(3):
        ui.client.create_run(exp)
    html = ui.get("/experiments").text
    assert f'href="/experiments/{exp}"' in html
    assert ">wine</a>" in html
    assert '<td class="n">3</td>' in html


def test_front_page_is_the_experiments_list(ui: UI) -> None:
    reply = ui.get("/")
    assert reply.status_code == 200
    assert reply.url.path == "/experiments"


def test_experiment_names_are_escaped(ui: UI) -> None:
    ui.client.create_experiment('<img src=x onerror="alert(1)">')
    html = ui.get("/experiments").text
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html


def test_unknown_page_is_an_html_404_for_browsers_and_json_for_clients(ui: UI) -> None:
    page = ui.get("/no/such/page")
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "there is no page at /no/such/page" in page.text
    api = ui.get("/no/such/page", headers={"Accept": "application/json"})
    assert api.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_static_files_and_plotly_are_served_with_long_caching(ui: UI) -> None:
    from mltrail._version import __version__

    css = ui.get(f"/static/{__version__}/ui.css")
    assert css.status_code == 200
    assert "immutable" in css.headers["cache-control"]
    assert ui.get(f"/static/{__version__}/..%2Fapp.py").status_code == 404
    import plotly

    js = ui.get(f"/static/plotly-{plotly.__version__}.min.js")
    assert js.status_code == 200
    assert len(js.content) > 1_000_000


def test_pages_need_sign_in_when_auth_is_on(tmp_path, start_server_auth) -> None:
    url, token = start_server_auth
    import httpx

    page = httpx.get(url + "/experiments", headers={"Accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fexperiments"
    bad = httpx.post(url + "/login", data={"token": "mlt_nope_nope", "next": "/experiments"})
    assert bad.status_code == 401
    assert "error" in bad.text
    good = httpx.post(url + "/login", data={"token": token, "next": "/experiments"})
    assert good.status_code == 303
    cookie = good.cookies.get("mltrail_token")
    assert cookie == token
    assert "samesite=strict" in good.headers["set-cookie"].lower()
    signed_in = httpx.get(url + "/experiments", cookies={"mltrail_token": token})
    assert signed_in.status_code == 200
    assert ">alice<" in signed_in.text
    # A write carrying only the cookie, from another site, is not signed in.
    cross = httpx.post(
        url + "/api/v1/experiments",
        json={"name": "x"},
        cookies={"mltrail_token": token},
        headers={"Origin": "http://evil.example"},
    )
    assert cross.status_code == 401


def test_login_refuses_to_redirect_off_the_server(tmp_path, start_server_auth) -> None:
    url, token = start_server_auth
    import httpx

    reply = httpx.post(url + "/login", data={"token": token, "next": "//evil.example/x"})
    assert reply.headers["location"] == "/"


@pytest.fixture
def start_server_auth(tmp_path):
    """A server with auth on and an admin token for alice."""
    pytest.importorskip("jinja2")
    from mltrail.server.app import ServerSettings
    from mltrail.store import open_store
    from tests.live import serve

    uri = f"sqlite:///{tmp_path / 'auth.db'}"
    store = open_store(uri)
    _, token = store.create_token("alice", "admin")
    store.close()
    with serve(ServerSettings(uri, str(tmp_path / "objects"), auth=True, access_log=False)) as url:
        yield url, token


@pytest.mark.browser
def test_experiments_page_in_chromium(ui: UI, page) -> None:
    for name in ("wine", "churn"):
        ui.client.create_run(ui.client.create_experiment(name))
    page.goto(ui.url + "/")
    assert page.title() == "Experiments · mltrail"
    page.get_by_role("link", name="wine").wait_for()
    shot(page, "experiments")
    # Keyboard: focus the first row, move down, open it.
    page.locator("table.grid tbody tr").first.focus()
    page.keyboard.press("ArrowDown")
    focused = page.evaluate("document.activeElement.textContent")
    assert "wine" in focused or "churn" in focused


_BUILD_APP = """
import sys
from mltrail.server.app import ServerSettings, create_app, _load_ui
app = create_app(ServerSettings({store!r}, {objects!r}, access_log=False))
assert _load_ui() is not None, "the UI was not loaded"
print("NUMPY:", "numpy" in sys.modules)
"""


def test_building_the_app_does_not_import_numpy(tmp_path) -> None:
    pytest.importorskip("jinja2")
    import subprocess
    import sys
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src"
    code = _BUILD_APP.format(store=f"sqlite:///{tmp_path / 'm.db'}", objects=str(tmp_path / "o"))
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(src), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    # numpy (~90 ms) is for chart data requests only, not every server and worker start.
    assert "NUMPY: False" in out.stdout


def test_without_numpy_the_ui_is_not_loaded_and_mltrail_ui_says_so(monkeypatch) -> None:
    import importlib.util

    from click.testing import CliRunner

    from mltrail.cli import cli
    from mltrail.server import app as server_app

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "numpy" else real(name, *a)
    )
    assert server_app._load_ui.__wrapped__() is None
    result = CliRunner().invoke(cli, ["ui", "--no-browser"], prog_name="mltrail")
    assert result.exit_code != 0
    assert "needs numpy" in result.output + (result.stderr or "")
