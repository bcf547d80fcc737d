"""How failures look: one message, a hint, the right exit code, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Invoke

_READ_COMMANDS = [
    ["runs", "ls"],
    ["runs", "ls", "--json"],
    ["exp", "ls"],
    ["runs", "show", "abcd"],
    ["runs", "history", "abcd", "loss"],
    ["runs", "artifacts", "abcd"],
]


@pytest.mark.parametrize("args", _READ_COMMANDS)
def test_no_project_folder(invoke: Invoke, tmp_path: Path, args: list[str]):
    result = invoke(*args, code=1)
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: no .mltrail folder in {tmp_path} or above",
        "hint: Create one with `mltrail init`, or check --store / MLTRAIL_TRACKING_URI.",
    ]
    assert not (tmp_path / ".mltrail").exists()


def test_project_found_from_a_subfolder(invoke: Invoke, seeded, tmp_path: Path, monkeypatch):
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert "depth-1" in invoke("runs", "ls").stdout
    assert not (sub / ".mltrail").exists()


@pytest.mark.parametrize("args", _READ_COMMANDS)
def test_a_file_named_mltrail(invoke: Invoke, tmp_path: Path, args: list[str]):
    (tmp_path / ".mltrail").write_text("oops")
    result = invoke(*args, code=1)
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / '.mltrail'} exists but is not a folder",
        "hint: Move that file away, then run `mltrail init`.",
    ]
    assert (tmp_path / ".mltrail").read_text() == "oops"


@pytest.mark.parametrize("args", [*_READ_COMMANDS, ["exp", "create", "x"], ["doctor"]])
def test_a_garbage_database_is_reported_and_left_alone(
    invoke: Invoke, tmp_path: Path, args: list[str]
):
    project = tmp_path / ".mltrail"
    project.mkdir()
    garbage = bytes(range(256)) * 64
    (project / "mltrail.db").write_bytes(garbage)
    result = invoke(*args, code=1)
    assert "is not a usable mltrail store" in result.output
    assert "Traceback" not in result.output
    assert (project / "mltrail.db").read_bytes() == garbage
    assert sorted(p.name for p in project.iterdir()) == ["mltrail.db"]


def test_bad_config_toml(invoke: Invoke, seeded, tmp_path: Path):
    (tmp_path / ".mltrail" / "config.toml").write_text("[core\n")
    result = invoke("runs", "ls", code=1)
    assert "config.toml is not valid TOML" in result.stderr
    assert "hint: Fix or delete the file" in result.stderr


def test_internal_error_is_one_line(invoke: Invoke, seeded, monkeypatch):
    from mltrail.tracking.client import MltrailClient

    def broken(*_args: object, **_kw: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(MltrailClient, "list_experiments", broken)
    result = invoke("exp", "ls", "--json", code=1)
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "internal error: RuntimeError: boom",
        "run with MLTRAIL_DEBUG=1 for the traceback",
    ]
    monkeypatch.setenv("MLTRAIL_DEBUG", "1")
    result = invoke("exp", "ls", code=1)
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1] == "internal error: RuntimeError: boom"


def test_mltrail_debug_also_traces_user_errors(invoke: Invoke, seeded, monkeypatch):
    monkeypatch.setenv("MLTRAIL_DEBUG", "1")
    result = invoke("runs", "show", "ffffffff", code=1)
    assert "Traceback" in result.stderr
    assert "error: no run id starts with 'ffffffff'" in result.stderr


def test_ctrl_c_exits_130_quietly(invoke: Invoke, seeded, monkeypatch):
    from mltrail.tracking.client import MltrailClient

    def interrupted(*_args: object, **_kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(MltrailClient, "search_runs", interrupted)
    result = invoke("runs", "ls", code=130)
    assert result.output == ""


def test_usage_errors_exit_2(invoke: Invoke, seeded):
    assert "Missing argument 'RUN'" in invoke("runs", "show", code=2).stderr
    assert "No such option" in invoke("runs", "ls", "--nope", code=2).stderr
    assert "is not a valid integer" in invoke("runs", "ls", "-n", "many", code=2).stderr
