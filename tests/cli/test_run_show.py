"""``mltrail runs show`` and run id prefixes."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.cli.conftest import Invoke


def _section(out: str, title: str) -> list[str]:
    """The indented lines under a section title, with runs of spaces collapsed."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    body = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        body.append(" ".join(line.split()))
    return body


def test_show_sections_by_prefix(invoke: Invoke, seeded):
    run_id = seeded["baseline"]
    out = invoke("runs", "show", run_id[:6]).stdout
    overview = _section(out, "Run")
    assert f"id {run_id}" in overview
    assert "name baseline" in overview
    assert "experiment Default (id 0)" in overview
    assert "status FINISHED" in overview
    assert _section(out, "Params (2)") == ["max_depth 3", "only_a x"]
    assert _section(out, "Metrics (2)") == ["accuracy NaN", "loss inf"]
    # System tags belong to the code and environment sections, not to the user's tags.
    assert _section(out, "Tags (1)") == ["team ml"]
    code = _section(out, "Code")
    assert "commit 0123456789abcdef0123456789abcdef01234567" in code
    assert "branch main" in code
    assert "dirty yes" in code
    assert "command python train.py --fast" in code
    assert any(line.startswith("diff _mltrail/git.diff (") for line in code)
    env = _section(out, "Environment")
    assert "python 3.11.7" in env
    assert "packages 2, see artifact _mltrail/requirements.txt" in env
    artifacts = _section(out, "Artifacts (3, ")
    assert [line.split()[0] for line in artifacts] == ["model.bin", "plots/a.png", "plots/b.png"]
    assert "_mltrail" not in "\n".join(artifacts)
    assert max(len(line) for line in out.splitlines()) <= 80


def test_show_without_capture_says_not_captured(invoke: Invoke, seeded):
    out = invoke("runs", "show", seeded["depth-2"]).stdout
    assert _section(out, "Code") == ["not captured"]
    assert _section(out, "Environment") == ["not captured"]
    assert _section(out, "Tags (0)") == ["none"]
    assert "parent" not in out


def test_show_json(invoke: Invoke, seeded):
    data = json.loads(invoke("runs", "show", seeded["baseline"][:8], "--json").stdout)
    assert data["run_id"] == seeded["baseline"]
    assert data["experiment_name"] == "Default"
    assert data["metrics"] == {"accuracy": "NaN", "loss": "Infinity"}
    assert data["params"] == {"max_depth": "3", "only_a": "x"}
    assert data["tags"]["mltrail.git.branch"] == "main"  # JSON keeps everything
    paths = [a["path"] for a in data["artifacts"]]
    assert "_mltrail/requirements.txt" in paths and "model.bin" in paths
    assert len(data["artifacts"][0]["hash"]) == 64


def test_show_deleted_run(invoke: Invoke, seeded):
    out = invoke("runs", "show", seeded["gone"]).stdout
    assert "FAILED (deleted)" in out


def test_unknown_run(invoke: Invoke, seeded):
    result = invoke("runs", "show", "ffffffff", "--json", code=1)
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: no run id starts with 'ffffffff'",
        "hint: List runs with `mltrail runs ls`.",
    ]


@pytest.mark.parametrize("ref", ["abc", "not-hex!", "12"])
def test_short_or_malformed_prefix(invoke: Invoke, seeded, ref: str):
    result = invoke("runs", "show", ref, code=1)
    assert "is not a run id or a prefix of one" in result.stderr
    assert "Traceback" not in result.output


def test_ambiguous_prefix(invoke: Invoke, seeded, tmp_path, monkeypatch):
    from mltrail.tracking.client import MltrailClient

    fixed = iter([uuid.UUID("abcd1111" + "0" * 24), uuid.UUID("abcd2222" + "0" * 24)])
    client = MltrailClient(str(tmp_path / ".mltrail"))
    with monkeypatch.context() as patch:
        patch.setattr(uuid, "uuid4", lambda: next(fixed))
        client.create_run("0", run_name="twin-1")
        client.create_run("0", run_name="twin-2")
    client.close()
    result = invoke("runs", "show", "abcd", code=1)
    assert "run id prefix 'abcd' is ambiguous" in result.stderr
    assert "twin-2" in invoke("runs", "show", "abcd2").stdout
