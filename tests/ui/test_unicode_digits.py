"""Digits int() refuses ("²" is str.isdigit()) answer with a 400 or 404 page, never a 500."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.ui.conftest import UI
from tests.ui.seed_models import seed


def test_superscript_digits_in_pages_are_not_server_errors(ui: UI, tmp_path: Path) -> None:
    s = seed(ui.client, tmp_path)
    # The runs table is lenient with its query: an odd page size falls back to the default.
    assert ui.get(f"/experiments/{s.experiment}?size=²").status_code == 200
    depth = ui.get("/lineage", params={"target": "data/raw.csv", "depth": "²"})
    assert depth.status_code == 400 and "depth" in depth.text
    assert ui.get("/models/wine-rf/versions/²").status_code == 400
    headers = {"Origin": ui.url, "Accept": "text/html"}
    bad_version = httpx.post(
        ui.url + "/models/wine-rf/aliases",
        data={"alias": "staging", "version": "²"},
        headers=headers,
    )
    assert bad_version.status_code == 400 and "whole number" in bad_version.text
    # A failed form goes back to the page it came from; "²" is not a version page to go to.
    bad_next = httpx.post(
        ui.url + "/models/wine-rf/aliases",
        data={"alias": "bad alias!", "version": "1", "next": "/models/wine-rf/versions/²"},
        headers=headers,
    )
    assert bad_next.status_code == 400
    assert "staging" not in ui.client.get_registered_model("wine-rf").aliases
