"""The README's two set-up commands: CI runs the test command, the example command works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up: two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", setup)


def test_readme_has_two_setup_commands():
    assert len(_commands()) == 2


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _commands()[1] in ci


@pytest.mark.slow
def test_example_runs_end_to_end(tmp_path: Path):
    env = {**os.environ, "MLTRAIL_CAPTURE": "1"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "wine" / "train.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "best run:" in out.stdout
    import mltrail as mt

    client = mt.MltrailClient(str(tmp_path))
    exp = client.get_experiment_by_name("wine")
    runs = client.search_runs(exp.experiment_id, "metrics.accuracy > 0.5")
    assert len(runs) == 6
    run = runs[0]
    assert {"n_estimators", "max_depth"} <= set(run.data.params)
    assert {"accuracy", "f1", "precision", "recall"} <= set(run.data.metrics)
    assert "feature_importance.csv" in [a.path for a in client.list_artifacts(run.run_id)]
    assert len(client.get_metric_history(run.run_id, "accuracy_by_trees")) >= 1
    # The best model was registered, promoted, loaded back and served.
    version = client.get_model_version_by_alias("wine-rf", "production")
    best = max(r.data.metrics["accuracy"] for r in runs)
    assert client.get_run(version.run_id).data.metrics["accuracy"] == best
    assert "model/MLmodel" in [a.path for a in client.list_artifacts(version.run_id)]
    assert "served:     POST /invocations -> [" in out.stdout
    # The README's first filter, run right after its own example, finds runs.
    assert client.search_runs(exp.experiment_id, _readme_filter())


def _readme_filter() -> str:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r'mltrail runs ls .*?--filter "([^"]+)"', readme)[0]


def test_readme_filter_matches_the_example_grid():
    # Fast guard for the slow test above: the filtered max_depth is one the example trains.
    import ast

    depth = re.search(r"params\.max_depth = (\d+)", _readme_filter())
    assert depth is not None
    source = (ROOT / "examples" / "wine" / "train.py").read_text()
    grid = ast.literal_eval(re.search(r"^GRID = (\{.*\})$", source, re.M).group(1))
    assert int(depth.group(1)) in grid["max_depth"]


def test_ruff_is_clean():
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed in this environment")
    out = subprocess.run(
        [
            str(ruff),
            "check",
            "--output-format",
            "concise",
            ".",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_ci_installs_its_tools_and_checks_python():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "missing+=(git)" in ci and "missing+=(python3-venv)" in ci
    assert "sys.version_info < (3, 11)" in ci


def test_the_test_extra_installs_pyarrow():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(re.match(r"pyarrow\b", dep) for dep in extras["test"])
