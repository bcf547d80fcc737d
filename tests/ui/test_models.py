"""The Models pages: the list, one model, one version, and changing aliases from the UI."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.ui.conftest import UI, shot
from tests.ui.seed_models import seed

XSS = '"><img src=x onerror=alert(1)>'


def _post(ui_url: str, path: str, data: dict[str, str], **kw: object) -> httpx.Response:
    """A form POST as the UI's own pages send it (same origin)."""
    headers = {"Origin": ui_url, "Accept": "text/html", **kw.pop("headers", {})}  # type: ignore[dict-item]
    return httpx.post(ui_url + path, data=data, headers=headers, **kw)  # type: ignore[arg-type]


def test_models_list_shows_latest_version_aliases_and_description(ui: UI, tmp_path: Path) -> None:
    seed(ui.client, tmp_path)
    ui.client.create_registered_model("churn", description="empty so far")
    html = ui.get("/models").text
    assert 'href="/models/wine-rf"' in html
    assert 'href="/models/churn"' in html
    assert "Random forest on the wine data" in html
    assert 'href="/models/wine-rf/versions/2">v2</a>' in html
    assert "production → v1" in html
    assert "champion → v2" in html
    assert html.index("churn") < html.index("wine-rf")  # by name
    filtered = ui.get("/models?q=WINE").text
    assert "wine-rf" in filtered and 'href="/models/churn"' not in filtered
    assert "No model matches" in ui.get("/models?q=nothing").text


def test_empty_registry_says_how_to_register(ui: UI) -> None:
    assert "No registered models yet" in ui.get("/models").text


def test_model_page_shows_versions_runs_metrics_aliases_tags_and_history(
    ui: UI, tmp_path: Path
) -> None:
    s = seed(ui.client, tmp_path)
    page = ui.get("/models/wine-rf")
    assert page.status_code == 200
    html = page.text
    # Versions with their source runs (linked) and the runs' latest metric values.
    assert f'href="/runs/{s.train1}"' in html and ">train-1</a>" in html
    assert f'href="/runs/{s.train2}"' in html and ">train-2</a>" in html
    assert '<th class="n" title="accuracy">accuracy</th>' in html
    assert '<td class="n">0.91</td>' in html and '<td class="n">0.95</td>' in html
    assert '<td class="n">0.93</td>' in html
    # Stage, aliases, tags.
    assert 'class="stage stage-Staging">Staging<' in html
    assert "production → v1" in html and "champion → v2" in html
    assert "team=ml" in html
    # The audit trail, newest first.
    history = html[html.index("<h2>History</h2>") :]
    assert "set an alias" in history and "registered a version" in history
    assert history.index("changed the stage") < history.index("registered a version")
    assert "Staging" in history
    # With auth off everyone may write: the alias form is there.
    assert 'action="/models/wine-rf/aliases"' in html


def test_version_page_shows_run_metrics_params_data_files_and_lineage(
    ui: UI, tmp_path: Path
) -> None:
    s = seed(ui.client, tmp_path)
    html = ui.get("/models/wine-rf/versions/1").text
    assert f'href="/runs/{s.train1}"' in html
    assert '<th>accuracy</th><td class="n">0.91</td>' in html
    assert "<th>n_estimators</th><td>100</td>" in html
    assert 'href="/datasets/data/prepared.csv"' in html
    assert "data/images" in html and "120" in html and "3 MB" in html
    # The model's files as a tree: the folder, then its file indented.
    assert re.search(r"extra/</td>", html)
    assert re.search(r'padding-left: 24px" title="extra/notes.txt">notes.txt<', html)
    assert ">model.pkl<" in html and ">MLmodel<" in html
    assert 'href="/lineage?target=models%3A/wine-rf/1"' in html
    assert "production → v1" in html
    assert ui.get("/models/wine-rf/versions/9").status_code == 404
    assert ui.get("/models/nope").status_code == 404


def test_setting_moving_and_removing_an_alias_from_the_ui(ui: UI, tmp_path: Path) -> None:
    seed(ui.client, tmp_path)
    reply = _post(
        ui.url,
        "/models/wine-rf/aliases",
        {"alias": "production", "version": "2", "comment": "better f1", "next": "/models/wine-rf"},
    )
    # Redirect after POST, to the page it came from, saying what happened.
    assert reply.status_code == 303
    assert reply.headers["location"] == "/models/wine-rf?version=2&set=production"
    assert ui.client.get_model_version_by_alias("wine-rf", "production").version == 2
    [event] = ui.client.get_model_history("wine-rf", limit=1)
    assert (event.action, event.key, event.before, event.after, event.comment) == (
        "set_alias",
        "production",
        "1",
        "2",
        "better f1",
    )
    assert event.actor == "anonymous"  # auth off and no claimed user: as the REST route records
    page = ui.get(reply.headers["location"]).text
    assert "Alias production now points at version 2." in page
    # From a version page, back to that page.
    back = _post(
        ui.url,
        "/models/wine-rf/aliases",
        {"alias": "staging", "version": "1", "next": "/models/wine-rf/versions/1"},
    )
    assert back.headers["location"].startswith("/models/wine-rf/versions/1?")
    # Remove.
    gone = _post(
        ui.url,
        "/models/wine-rf/aliases",
        {"alias": "champion", "action": "remove", "next": "//evil.example/"},
    )
    assert gone.status_code == 303
    assert gone.headers["location"] == "/models/wine-rf?removed=champion"  # never off the site
    assert "champion" not in ui.client.get_registered_model("wine-rf").aliases


def test_a_bad_alias_shows_the_error_inline_and_changes_nothing(ui: UI, tmp_path: Path) -> None:
    seed(ui.client, tmp_path)
    before = ui.client.get_registered_model("wine-rf").aliases
    reply = _post(
        ui.url,
        "/models/wine-rf/aliases",
        {"alias": "latest", "version": "2", "next": "/models/wine-rf"},
    )
    assert reply.status_code == 400
    assert "text/html" in reply.headers["content-type"]
    assert 'id="alias-error" role="alert"' in reply.text
    assert "alias &#39;latest&#39; is reserved" in reply.text
    assert 'value="latest"' in reply.text  # what was typed stays in the form
    bad = _post(ui.url, "/models/wine-rf/aliases", {"alias": "a b", "version": "1"})
    assert bad.status_code == 400 and "is not allowed" in bad.text
    missing = _post(ui.url, "/models/wine-rf/aliases", {"alias": "x", "version": "7"})
    assert missing.status_code == 400 and 'id="alias-error"' in missing.text
    assert ui.client.get_registered_model("wine-rf").aliases == before


def test_model_text_is_escaped(ui: UI, tmp_path: Path) -> None:
    seed(ui.client, tmp_path, description=XSS + "<script>alert(2)</script>")
    ui.client.set_registered_model_tag("wine-rf", "note", XSS)
    for path in ("/models", "/models/wine-rf", "/models/wine-rf/versions/1"):
        html = ui.get(path).text
        assert "<img src=x" not in html and "<script>alert" not in html, path
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in ui.get("/models/wine-rf").text


# -- with auth on --------------------------------------------------------------------------------


@pytest.fixture
def auth_ui(tmp_path: Path):
    """A server with auth on over a store seeded with wine-rf; (url, admin token, read token)."""
    pytest.importorskip("jinja2")
    from mltrail import MltrailClient
    from mltrail.server.app import ServerSettings
    from mltrail.store import open_store
    from tests.live import serve

    uri = f"sqlite:///{tmp_path / 'auth.db'}"
    objects = str(tmp_path / "objects")
    client = MltrailClient(uri, objects=objects)
    seed(client, tmp_path)
    client.close()
    store = open_store(uri)
    _, admin = store.create_token("alice", "admin")
    _, reader = store.create_token("bob", "read")
    store.close()
    with serve(ServerSettings(uri, objects, auth=True, access_log=False)) as url:
        yield url, admin, reader


def test_read_only_users_see_no_form_and_are_refused(auth_ui) -> None:
    url, admin, reader = auth_ui
    cookies = {"mltrail_token": reader}
    page = httpx.get(url + "/models/wine-rf", cookies=cookies, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "production → v1" in page.text
    assert 'action="/models/wine-rf/aliases"' not in page.text  # no form, no remove buttons
    assert "Set alias" not in page.text
    version = httpx.get(url + "/models/wine-rf/versions/1", cookies=cookies)
    assert "Set alias" not in version.text
    refused = _post(
        url, "/models/wine-rf/aliases", {"alias": "production", "version": "2"}, cookies=cookies
    )
    assert refused.status_code == 403
    assert "text/html" in refused.headers["content-type"]
    assert "may not write" in refused.text
    removed = _post(
        url, "/models/wine-rf/aliases", {"alias": "production", "action": "remove"}, cookies=cookies
    )
    assert removed.status_code == 403
    # The admin sees the form, and may change the alias; the token's user is recorded.
    admin_cookies = {"mltrail_token": admin}
    assert "Set alias" in httpx.get(url + "/models/wine-rf", cookies=admin_cookies).text
    done = _post(
        url,
        "/models/wine-rf/aliases",
        {"alias": "production", "version": "2"},
        cookies=admin_cookies,
    )
    assert done.status_code == 303
    from mltrail.store import open_store

    with_token = httpx.get(
        url + "/api/v1/models/wine-rf/events",
        params={"limit": 1},
        headers={"Authorization": f"Bearer {admin}"},
    ).json()["events"]
    assert (with_token[0]["actor"], with_token[0]["after"]) == ("alice", "2")
    del open_store


def test_a_cookie_write_from_another_site_is_refused(auth_ui) -> None:
    url, admin, _ = auth_ui
    reply = httpx.post(
        url + "/models/wine-rf/aliases",
        data={"alias": "production", "version": "2"},
        cookies={"mltrail_token": admin},
        headers={"Origin": "http://evil.example", "Accept": "text/html"},
    )
    # Refused before anyone is signed in; nothing changed.
    assert reply.status_code == 403
    assert "this form must be sent from the mltrail UI itself" in reply.text
    aliases = httpx.get(
        url + "/api/v1/models/wine-rf", headers={"Authorization": f"Bearer {admin}"}
    ).json()["aliases"]
    assert aliases["production"] == 1


@pytest.mark.browser
def test_models_pages_in_chromium(ui: UI, page, tmp_path: Path) -> None:
    seed(ui.client, tmp_path)
    page.goto(ui.url + "/models")
    assert page.title() == "Models · mltrail"
    page.get_by_role("link", name="wine-rf").first.click()
    page.wait_for_url("**/models/wine-rf")
    page.get_by_role("cell", name="train-2").wait_for()
    shot(page, "models")
    # Move production to v2 with the form.
    page.fill("#alias-name", "production")
    page.select_option("#alias-version", "2")
    page.fill("input[name=comment]", "promote v2")
    page.get_by_role("button", name="Set alias").click()
    page.wait_for_url("**/models/wine-rf?version=2&set=production")
    page.get_by_role("status").wait_for()
    assert "Alias production now points at version 2." in page.get_by_role("status").inner_text()
    assert ui.client.get_model_version_by_alias("wine-rf", "production").version == 2
    assert page.get_by_role("link", name="production → v2").count() == 1
    # A bad name is shown next to the form.
    page.fill("#alias-name", "v3")
    page.get_by_role("button", name="Set alias").click()
    page.get_by_role("alert").wait_for()
    assert "reserved" in page.get_by_role("alert").inner_text()
    # Remove an alias with its button.
    page.goto(ui.url + "/models/wine-rf")
    page.get_by_role("button", name="Remove alias champion").click()
    page.wait_for_url("**removed=champion")
    assert "champion" not in ui.client.get_registered_model("wine-rf").aliases
    # The version page.
    page.goto(ui.url + "/models/wine-rf/versions/2")
    page.get_by_role("heading", name="Model files").wait_for()
    shot(page, "model-version")


# -- forms from other sites ----------------------------------------------------------------------


def test_forms_from_another_site_are_refused_with_auth_off(ui: UI, tmp_path: Path) -> None:
    seed(ui.client, tmp_path)
    remove = {"alias": "champion", "action": "remove"}
    for headers in (
        {"Origin": "https://evil.example"},
        {"Referer": "https://evil.example/page"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example", "X-Forwarded-Host": "other.example"},
    ):
        reply = httpx.post(
            ui.url + "/models/wine-rf/aliases",
            data=remove,
            headers={"Accept": "text/html", **headers},
        )
        assert reply.status_code == 403, headers
        assert "text/html" in reply.headers["content-type"]
        assert "this form must be sent from the mltrail UI itself" in reply.text
        assert ui.client.get_registered_model("wine-rf").aliases["champion"] == 2
    for path, data in (("/login", {"token": "x"}), ("/logout", {})):
        reply = httpx.post(ui.url + path, data=data, headers={"Origin": "https://evil.example"})
        assert reply.status_code == 403, path


def test_forms_from_the_ui_itself_pass(ui: UI, tmp_path: Path) -> None:
    seed(ui.client, tmp_path)
    host = ui.url.split("://", 1)[1]
    for alias, headers in (
        ("a1", {"Origin": ui.url}),
        ("a2", {"Referer": ui.url + "/models/wine-rf"}),
        ("a3", {"Sec-Fetch-Site": "same-origin"}),
        # Behind a proxy that rewrites Host, the browser's host comes as X-Forwarded-Host.
        ("a4", {"Origin": "https://mltrail.example", "X-Forwarded-Host": "mltrail.example"}),
        ("a5", {}),  # curl: not a browser, so no one's session rides on it
    ):
        reply = httpx.post(
            ui.url + "/models/wine-rf/aliases",
            data={"alias": alias, "version": "1"},
            headers={"Accept": "text/html", "Host": host, **headers},
        )
        assert reply.status_code == 303, headers
        assert ui.client.get_registered_model("wine-rf").aliases[alias] == 1


def test_a_too_long_comment_is_refused_inline(ui: UI, tmp_path: Path) -> None:
    seed(ui.client, tmp_path)
    reply = _post(
        ui.url,
        "/models/wine-rf/aliases",
        {"alias": "production", "version": "2", "comment": "x" * 5001},
    )
    assert reply.status_code == 400
    assert "at most 5000" in reply.text
    assert ui.client.get_model_version_by_alias("wine-rf", "production").version == 1
