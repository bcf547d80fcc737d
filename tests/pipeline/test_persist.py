"""``persist: true`` outs: left in place while the command runs, never restored from a cache."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mltrail.errors import InvalidInput
from mltrail.pipeline.runner import StageFailed, repro
from mltrail.pipeline.spec import load
from tests.data import settle, write
from tests.pipeline.conftest import project

__all__ = ["project"]

APPEND = """
import sys
n = open("n.txt").read().strip()
open("state.txt", "a").write(f"run {n}\\n")
open("model.txt", "w").write(n)
if n == "fail":
    sys.exit(2)
"""
PIPELINE = """
stages:
  grow:
    cmd: python grow.py
    deps: [grow.py, n.txt]
    outs:
      - state.txt:
          persist: true
      - model.txt
"""


@pytest.fixture
def growing(project: Path) -> Path:
    write(project / "grow.py", APPEND)
    write(project / "n.txt", "1")
    write(project / "mltrail.yaml", textwrap.dedent(PIPELINE))
    settle(project / "grow.py", project / "n.txt")
    return project


def _actions(project: Path) -> list[str]:
    return [s.action for s in repro(start=project).stages]


def test_a_persistent_out_is_kept_and_updated_in_place(growing: Path) -> None:
    stage = load(growing).stages["grow"]
    assert [(o.path, o.persist) for o in stage.outs] == [("state.txt", True), ("model.txt", False)]
    assert _actions(growing) == ["ran"]
    write(growing / "n.txt", "2")
    settle(growing / "n.txt")
    assert _actions(growing) == ["ran"]
    assert (growing / "state.txt").read_text() == "run 1\nrun 2\n"  # not moved aside
    assert _actions(growing) == ["unchanged"]


def test_it_is_never_restored_from_the_run_cache(growing: Path) -> None:
    assert _actions(growing) == ["ran"]
    write(growing / "n.txt", "2")
    settle(growing / "n.txt")
    assert _actions(growing) == ["ran"]
    write(growing / "n.txt", "1")  # inputs seen before: a run-cache hit for other stages
    settle(growing / "n.txt")
    assert _actions(growing) == ["ran"]
    assert (growing / "state.txt").read_text() == "run 1\nrun 2\nrun 1\n"


def test_a_failed_command_leaves_it_as_the_command_left_it(growing: Path) -> None:
    assert _actions(growing) == ["ran"]
    write(growing / "n.txt", "fail")
    settle(growing / "n.txt")
    with pytest.raises(StageFailed):
        repro(start=growing)
    assert (growing / "state.txt").read_text() == "run 1\nrun fail\n"
    assert (growing / "model.txt").read_text() == "1"  # the other out is put back


def test_persist_must_be_a_boolean(project: Path) -> None:
    write(project / "mltrail.yaml", "stages:\n  s:\n    cmd: x\n    outs: [{a: {persist: 1}}]\n")
    with pytest.raises(InvalidInput, match="persist must be true or false"):
        load(project)
