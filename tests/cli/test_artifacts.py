"""``mltrail runs artifacts`` and ``runs download``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Invoke


def test_list_all(invoke: Invoke, seeded):
    out = invoke("runs", "artifacts", seeded["baseline"][:6]).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["path", "size", "hash"]
    paths = [line.split()[0] for line in lines[2:-1]]
    assert paths == [
        "_mltrail/git.diff",
        "_mltrail/requirements.txt",
        "model.bin",
        "plots/a.png",
        "plots/b.png",
    ]
    model = next(line for line in lines if line.startswith("model.bin")).split()
    assert model[1:3] == ["7", "B"]
    assert len(model[3]) == 12
    assert lines[-1].startswith("5 files, ")


def test_list_under_a_folder_as_json(invoke: Invoke, seeded):
    files = json.loads(invoke("runs", "artifacts", seeded["baseline"], "plots", "--json").stdout)
    assert [f["path"] for f in files] == ["plots/a.png", "plots/b.png"]
    assert files[0]["size"] == 1
    assert len(files[0]["hash"]) == 64


def test_run_without_artifacts(invoke: Invoke, seeded):
    out = invoke("runs", "artifacts", seeded["depth-1"]).stdout
    assert out == f"Run {seeded['depth-1'][:8]} has no artifacts.\n"
    assert json.loads(invoke("runs", "artifacts", seeded["depth-1"], "--json").stdout) == []


def test_unknown_path(invoke: Invoke, seeded):
    result = invoke("runs", "artifacts", seeded["baseline"], "nope", code=1)
    assert "has no artifact 'nope'" in result.stderr


def test_download_folder(invoke: Invoke, seeded, tmp_path: Path):
    out = invoke("runs", "download", seeded["baseline"], "plots", "-o", "dest").stdout
    assert out.startswith("Downloaded 2 files (3 B) to dest")
    assert (tmp_path / "dest" / "plots" / "a.png").read_text() == "a"
    assert (tmp_path / "dest" / "plots" / "b.png").read_text() == "bb"


def test_download_one_file_to_a_name(invoke: Invoke, seeded, tmp_path: Path):
    invoke("runs", "download", seeded["baseline"], "model.bin", "--output", "weights.bin")
    assert (tmp_path / "weights.bin").read_text() == "weights"


def test_download_everything_here(invoke: Invoke, seeded, tmp_path: Path):
    out = invoke("runs", "download", seeded["baseline"]).stdout
    assert "Downloaded 5 files" in out
    assert (tmp_path / "_mltrail" / "requirements.txt").exists()
    assert (tmp_path / "model.bin").read_text() == "weights"


def test_download_nothing(invoke: Invoke, seeded):
    result = invoke("runs", "download", seeded["depth-1"], code=1)
    assert "has no artifacts" in result.stderr
