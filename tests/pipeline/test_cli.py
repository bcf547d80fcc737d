"""mltrail repro and mltrail dag through the CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from mltrail.cli import cli
from tests.data import write
from tests.pipeline.conftest import runs


def _invoke(*args: str, code: int = 0):
    result = CliRunner().invoke(cli, list(args), prog_name="mltrail")
    assert result.exit_code == code, f"{result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result


def test_repro_then_up_to_date(pipeline: Path):
    out = _invoke("repro").stdout
    assert "Running stage 'prepare' (never ran)" in out
    assert "Done: 2 ran; 0 up to date." in out
    assert "git add mltrail.lock" in out
    assert "Pipeline is up to date (2 stage(s))." in _invoke("repro").stdout


def test_repro_dry_set_param_and_grid(pipeline: Path):
    out = _invoke("repro", "--dry").stdout
    assert "Would run 'prepare' (never ran)" in out and "2 of 2 stage(s) would run." in out
    assert runs(pipeline) == []
    out = _invoke("repro", "-S", "train.max_depth=3").stdout
    assert "Params set: train.max_depth=3 (params file updated)" in out
    out = _invoke("repro", "--grid", "train.max_depth=4,6", "-j", "2").stdout
    assert "== grid point: train.max_depth=4" in out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("point"))
    assert header.split() == ["point", "ran", "restored", "acc", "nested.loss"]
    assert any(line.split()[:4] == ["train.max_depth=6", "1", "0", "0.6"] for line in lines)
    assert "max_depth: 3" in (pipeline / "params.yaml").read_text()


def test_repro_failure_message(pipeline: Path):
    result = _invoke("repro", "-S", "train.fail=1", code=1)
    assert "error: stage 'train' failed: its command exited with code 3" in result.stderr
    assert "boom: training diverged" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_yaml_is_an_error_with_a_line(project: Path):
    write(project / "mltrail.yaml", "stages:\n  a:\n    cmd: x\n    outz: [y]\n")
    result = _invoke("repro", code=1)
    assert "error: mltrail.yaml:4: unknown key 'outz' in stage 'a'" in result.stderr
    assert "hint: Expected one of cmd, deps" in result.stderr
    assert "mltrail.yaml:4" in _invoke("dag", code=1).stderr


def test_dag_formats(pipeline: Path):
    assert _invoke("dag").stdout == "prepare\n└── train\n"
    assert "s0 --> s1" in _invoke("dag", "--format", "mermaid").stdout
    assert _invoke("dag", "--format", "dot", "prepare").stdout.count("->") == 0
    assert "no stage named 'nope'" in _invoke("dag", "nope", code=1).stderr


def test_no_pipeline_file(project: Path):
    assert "no mltrail.yaml in" in _invoke("repro", code=1).stderr


def test_repro_imports_little(pipeline: Path):
    _invoke("repro")
    code = (
        "import sys; from mltrail.cli import cli\n"
        "try:\n    cli(['repro'], prog_name='mltrail')\n"
        "except SystemExit: pass\n"
        "heavy = [m for m in ('sqlalchemy', 'rich', 'httpx', 'boto3') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=pipeline, capture_output=True, text=True, timeout=60
    )
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr


UNCACHED = """
pipeline: demo
stages:
  s:
    cmd: python -c "import yaml; print(yaml.safe_load(open('params.yaml'))['x'])" > out.txt
    params: [x]
    outs:
      - out.txt:
          cache: false
"""


def test_grid_puts_back_cache_false_outs(project: Path):
    write(project / "params.yaml", "x: 1\n")
    write(project / "mltrail.yaml", UNCACHED)
    _invoke("repro")
    result = _invoke("repro", "--grid", "x=2,3")
    assert "warning" not in result.stderr
    assert "params files and outs put back as they were" in result.stdout
    assert (project / "out.txt").read_text() == "1\n"
    assert "0 of 1 stage(s) would run." in _invoke("repro", "--dry").stdout


def test_grid_that_cannot_put_an_out_back_exits_1_and_says_what_to_do(project: Path):
    write(project / "params.yaml", "x: 1\n")
    write(
        project / "mltrail.yaml",
        UNCACHED.replace("      - out.txt:\n          cache: false\n", "      - out.txt\n"),
    )
    _invoke("repro")
    shutil.rmtree(project / ".mltrail" / "objects")  # x=1's out.txt is no longer stored
    result = _invoke("repro", "--grid", "x=2", code=1)
    assert "x=2" in result.stdout  # the points' table is still shown
    assert "params files put back, but not every out" in result.stdout
    assert "error: the grid ran, but the outs of 1 stage(s) could not be put back" in result.stderr
    assert (
        "hint: The params files and mltrail.lock are back as they were, so `mltrail repro s`"
        in result.stderr
    )
    assert (project / "params.yaml").read_text() == "x: 1\n"
    assert "Ran 's'" in _invoke("repro").stdout  # as the hint says: rebuilt
    assert (project / "out.txt").read_text() == "1\n"


def _assert_not_utf8(result, name: str) -> None:
    assert f"{name} is not UTF-8 text" in result.stderr, result.stderr
    assert "hint:" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_params_file_not_utf8_is_an_error_naming_it(pipeline: Path):
    _invoke("repro")
    (pipeline / "params.yaml").write_bytes(
        "train:\n  max_depth: 5  # d\xe9j\xe0\n".encode("latin-1")
    )
    _assert_not_utf8(_invoke("repro", "--dry", code=1), "params file params.yaml")


def test_pipeline_file_not_utf8_is_an_error_naming_it(pipeline: Path):
    text = (pipeline / "mltrail.yaml").read_text() + "# caf\xe9\n"
    (pipeline / "mltrail.yaml").write_bytes(text.encode("latin-1"))
    _assert_not_utf8(_invoke("dag", code=1), "mltrail.yaml")
    _assert_not_utf8(_invoke("repro", "--dry", code=1), "mltrail.yaml")


def test_lock_file_not_utf8_is_an_error_naming_it(pipeline: Path):
    _invoke("repro")
    text = (pipeline / "mltrail.lock").read_text() + "# caf\xe9\n"
    (pipeline / "mltrail.lock").write_bytes(text.encode("latin-1"))
    _assert_not_utf8(_invoke("repro", "--dry", code=1), "mltrail.lock")


def test_params_diff_not_utf8_names_the_file_and_side(pipeline: Path):
    subprocess.run(["git", "add", "."], cwd=pipeline, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
        cwd=pipeline,
        check=True,
    )
    (pipeline / "params.yaml").write_bytes(b"train:\n  max_depth: 5  # \xe9\n")
    result = _invoke("params", "diff", code=1)
    _assert_not_utf8(result, "params.yaml (in the working tree)")


def test_metrics_file_not_utf8_has_no_metrics(tmp_path: Path):
    from mltrail.pipeline.runner import read_metrics

    (tmp_path / "m.yaml").write_bytes(b"acc: 0.5  # \xe9\n")
    assert read_metrics(tmp_path / "m.yaml") == {}
