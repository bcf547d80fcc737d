"""``mltrail init`` and ``mltrail doctor``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Invoke


def test_init_creates_the_project_and_reports_it(invoke: Invoke, tmp_path: Path):
    out = invoke("init").stdout
    project = tmp_path / ".mltrail"
    assert f"Initialized mltrail project in {project}" in out
    for name in ("config.toml", "objects", "mltrail.db", ".gitignore"):
        assert (project / name).exists()
        assert f"created {name}" in out


def test_init_is_idempotent(invoke: Invoke, tmp_path: Path):
    invoke("init")
    db = (tmp_path / ".mltrail" / "mltrail.db").read_bytes()
    out = invoke("init").stdout
    assert "Already initialized" in out
    assert (tmp_path / ".mltrail" / "mltrail.db").read_bytes() == db


def test_init_completes_a_partial_project(invoke: Invoke, tmp_path: Path):
    (tmp_path / ".mltrail").mkdir()
    out = invoke("init").stdout
    assert "created mltrail.db" in out
    assert "created config.toml" in out


def test_init_at_a_path(invoke: Invoke, tmp_path: Path):
    invoke("init", "sub/project")
    assert (tmp_path / "sub" / "project" / ".mltrail" / "mltrail.db").exists()
    assert not (tmp_path / ".mltrail").exists()


def test_init_ignores_the_store_variable_but_says_so(invoke: Invoke, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MLTRAIL_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    out = invoke("init").stdout
    assert (tmp_path / ".mltrail" / "mltrail.db").exists()
    assert not (tmp_path / "elsewhere.db").exists()
    assert "note:" in out


def test_init_over_a_file_named_mltrail(invoke: Invoke, tmp_path: Path):
    (tmp_path / ".mltrail").write_text("not a folder")
    result = invoke("init", code=1)
    assert "is not a folder" in result.stderr
    assert (tmp_path / ".mltrail").read_text() == "not a folder"


def test_doctor_on_a_healthy_project(invoke: Invoke, seeded: dict[str, str], tmp_path: Path):
    out = invoke("doctor").stdout
    assert "✗" not in out
    for needle in ("✓ mltrail", "SQLAlchemy", "project folder", "schema: revision", "objects)"):
        assert needle in out
    assert str(tmp_path / ".mltrail") in out


def test_doctor_json(invoke: Invoke, seeded: dict[str, str]):
    checks = json.loads(invoke("doctor", "--json").stdout)
    assert all(c["ok"] for c in checks)
    objects = next(c for c in checks if c["name"] == "object store")
    assert "5 objects" in objects["detail"]  # the seeded run's five text artifacts


def test_doctor_without_a_project_fails_and_creates_nothing(invoke: Invoke, tmp_path: Path):
    result = invoke("doctor", code=1)
    assert "✗ store: no .mltrail folder" in result.stdout
    assert "✓ mltrail" in result.stdout
    assert not (tmp_path / ".mltrail").exists()


def test_doctor_on_a_garbage_database(invoke: Invoke, tmp_path: Path):
    (tmp_path / ".mltrail").mkdir()
    garbage = b"\x00garbage" * 512
    (tmp_path / ".mltrail" / "mltrail.db").write_bytes(garbage)
    result = invoke("doctor", code=1)
    assert "✗ tracking store" in result.stdout
    assert "not a usable mltrail store" in result.stdout
    assert (tmp_path / ".mltrail" / "mltrail.db").read_bytes() == garbage
