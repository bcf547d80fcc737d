"""CLI fixtures: a seeded project built once per test process and copied into each test."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import mltrail
from mltrail.cli import cli

SRC = Path(mltrail.__file__).resolve().parent.parent

#: Environment that changes how rich draws; tests want plain 80-column text.
_DISPLAY_VARS = ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


@pytest.fixture(autouse=True)
def _plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _DISPLAY_VARS:
        monkeypatch.delenv(name, raising=False)


Invoke = Callable[..., Result]


@pytest.fixture
def invoke() -> Invoke:
    """Run ``mltrail ARGS`` in-process; check the exit code (``code=None`` skips the check)."""
    runner = CliRunner()

    def run(*args: str, code: int | None = 0) -> Result:
        result = runner.invoke(cli, list(args), prog_name="mltrail")
        if code is not None:
            assert result.exit_code == code, (
                f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    return run


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m mltrail ARGS`` in a subprocess, as a user would."""
    full_env = {**os.environ, "PYTHONPATH": str(SRC), "MLTRAIL_CAPTURE": "0", **(env or {})}
    for name in _DISPLAY_VARS:
        full_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "mltrail", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _seed(root: Path) -> dict[str, str]:
    """Build a project with known content; return run ids by name."""
    from mltrail.config import init_project
    from mltrail.tracking import capture as cap
    from mltrail.tracking.client import MltrailClient

    project = init_project(root)
    client = MltrailClient(str(project))
    ids: dict[str, str] = {}
    sweep = client.create_experiment("sweep")
    client.create_experiment("empty")
    for depth in range(1, 6):
        run = client.create_run(sweep, run_name=f"depth-{depth}", start_time=1_700_000_000_000)
        client.log_params(run.run_id, {"max_depth": depth, "optimizer": "adam"})
        for step in range(3):
            client.log_metrics(
                run.run_id, {"accuracy": 0.5 + depth / 10 + step / 100, "loss": 1 / depth}, step
            )
        client.set_terminated(run.run_id)
        ids[f"depth-{depth}"] = run.run_id

    base = client.create_run(
        "0",
        run_name="baseline",
        tags={
            "team": "ml",
            cap.TAG_GIT_COMMIT: "0123456789abcdef0123456789abcdef01234567",
            cap.TAG_GIT_BRANCH: "main",
            cap.TAG_GIT_DIRTY: "true",
            cap.TAG_COMMAND: "python train.py --fast",
            cap.TAG_PYTHON: "3.11.7",
            cap.TAG_PLATFORM: "Linux-test",
        },
    )
    client.log_params(base.run_id, {"max_depth": 3, "only_a": "x"})
    client.log_metrics(base.run_id, {"accuracy": math.nan, "loss": math.inf})
    client.log_text(base.run_id, "numpy==2.0\nclick==8.1\n", cap.REQUIREMENTS_ARTIFACT)
    client.log_text(base.run_id, "diff --git a b\n", cap.DIFF_ARTIFACT)
    client.log_text(base.run_id, "weights", "model.bin")
    client.log_text(base.run_id, "a", "plots/a.png")
    client.log_text(base.run_id, "bb", "plots/b.png")
    client.set_terminated(base.run_id)
    ids["baseline"] = base.run_id

    gone = client.create_run("0", run_name="gone")
    client.set_terminated(gone.run_id, "FAILED")
    client.delete_run(gone.run_id)
    ids["gone"] = gone.run_id
    client.close()
    return ids


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("template")
    old = {k: os.environ.pop(k, None) for k in ("MLTRAIL_TRACKING_URI", "MLTRAIL_OBJECTS")}
    try:
        ids = _seed(root)
    finally:
        os.environ.update({k: v for k, v in old.items() if v is not None})
    return root / ".mltrail", ids


@pytest.fixture
def seeded(_template: tuple[Path, dict[str, str]], tmp_path: Path) -> Iterator[dict[str, str]]:
    """A copy of the seeded project in the test's folder (the working directory)."""
    source, ids = _template
    shutil.copytree(source, tmp_path / ".mltrail")
    yield ids
