"""The entry point: fast start, lazy imports, version, help, ``python -m mltrail``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mltrail import __version__
from mltrail.cli import main
from tests.cli.conftest import SRC, Invoke, run_cli

_CHECK_IMPORTS = """
import sys
from mltrail.cli import main
try:
    main({args!r})
except SystemExit:
    pass
heavy = [m for m in {modules!r} if m in sys.modules]
print("HEAVY:", ",".join(heavy))
"""


_HEAVY = ("sqlalchemy", "rich", "mltrail.tracking", "mltrail.store", "alembic")


@pytest.mark.parametrize(
    ("args", "modules"),
    [
        (["--help"], _HEAVY),
        (["--version"], (*_HEAVY, "click")),  # answered before click is imported
        (["--store", "x", "--version"], _HEAVY),
        (["runs", "--help"], _HEAVY),
        (["exp", "--help"], _HEAVY),
        (["runs", "ls", "-h"], _HEAVY),
    ],
)
def test_help_and_version_import_nothing_heavy(args: list[str], modules: tuple, tmp_path: Path):
    out = subprocess.run(
        [sys.executable, "-c", _CHECK_IMPORTS.format(args=args, modules=modules)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(SRC), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("HEAVY:"), out.stdout


def test_version_fast_path(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"mltrail {__version__}\n"


def test_version_through_click(invoke: Invoke):
    assert invoke("--version").stdout == f"mltrail {__version__}\n"


def test_help_lists_commands_in_workflow_order(invoke: Invoke):
    out = invoke("--help").stdout
    positions = [out.index(f"  {name} ") for name in ("init", "exp", "runs", "doctor")]
    assert positions == sorted(positions)
    assert "MLTRAIL_TRACKING_URI" in out


def test_unknown_command_is_a_usage_error(invoke: Invoke):
    result = invoke("nope", code=2)
    assert "No such command" in result.stderr


@pytest.mark.slow
def test_python_dash_m(tmp_path: Path):
    out = run_cli("--version", cwd=tmp_path)
    assert out.returncode == 0
    assert out.stdout == f"mltrail {__version__}\n"
    out = run_cli("--help", cwd=tmp_path)
    assert out.returncode == 0
    assert out.stdout.startswith("Usage: mltrail ")
