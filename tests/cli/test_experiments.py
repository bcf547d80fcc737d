"""``mltrail exp``: ls, create, delete, restore, rename."""

from __future__ import annotations

import json

from tests.cli.conftest import Invoke


def test_ls_table(invoke: Invoke, seeded: dict[str, str]):
    out = invoke("exp", "ls").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["id", "name", "runs", "last", "activity", "created"]
    rows = {line.split()[1]: line.split() for line in lines[2:]}
    assert rows["sweep"][2] == "5"
    assert rows["Default"][2] == "1"  # the deleted run is not counted
    assert rows["empty"][2] == "0"


def test_ls_json(invoke: Invoke, seeded: dict[str, str]):
    rows = json.loads(invoke("exp", "ls", "--json").stdout)
    assert [r["name"] for r in rows] == ["Default", "sweep", "empty"]
    sweep = rows[1]
    assert sweep["active_runs"] == 5
    assert sweep["lifecycle_stage"] == "active"
    assert set(sweep) >= {"experiment_id", "creation_time", "last_activity", "tags"}


def test_create_then_ls(invoke: Invoke, seeded: dict[str, str]):
    out = invoke("exp", "create", "new-one").stdout
    assert "Created experiment 'new-one' (id 3)" in out
    names = [r["name"] for r in json.loads(invoke("exp", "ls", "--json").stdout)]
    assert "new-one" in names


def test_create_duplicate_name(invoke: Invoke, seeded: dict[str, str]):
    result = invoke("exp", "create", "sweep", code=1)
    assert result.stderr.startswith("error: experiment 'sweep' already exists")
    assert "Traceback" not in result.output


def test_delete_and_restore_by_name_and_id(invoke: Invoke, seeded: dict[str, str]):
    out = invoke("exp", "delete", "sweep").stdout
    assert "Deleted experiment 'sweep' (id 1) and its 5 runs" in out
    assert "mltrail exp restore 1" in out
    active = [r["name"] for r in json.loads(invoke("exp", "ls", "--json").stdout)]
    assert "sweep" not in active
    deleted = json.loads(invoke("exp", "ls", "--deleted", "--json").stdout)
    assert [r["name"] for r in deleted] == ["sweep"]
    table = invoke("exp", "ls", "--all").stdout
    assert "deleted" in table and "state" in table
    # Its runs left the default listing with it.
    assert len(json.loads(invoke("runs", "ls", "--json").stdout)) == 1

    out = invoke("exp", "restore", "1").stdout
    assert "Restored experiment 'sweep' (id 1), 5 active runs" in out
    assert len(json.loads(invoke("runs", "ls", "--json").stdout)) == 6


def test_delete_twice(invoke: Invoke, seeded: dict[str, str]):
    invoke("exp", "delete", "empty")
    result = invoke("exp", "delete", "empty", code=1)
    assert "already deleted" in result.stderr


def test_default_experiment_cannot_be_deleted(invoke: Invoke, seeded: dict[str, str]):
    result = invoke("exp", "delete", "Default", code=1)
    assert "cannot be deleted" in result.stderr


def test_rename(invoke: Invoke, seeded: dict[str, str]):
    out = invoke("exp", "rename", "sweep", "grid").stdout
    assert "Renamed experiment 'sweep' (id 1) to 'grid'" in out
    assert len(json.loads(invoke("runs", "ls", "-e", "grid", "--json").stdout)) == 5


def test_rename_to_a_taken_name(invoke: Invoke, seeded: dict[str, str]):
    result = invoke("exp", "rename", "sweep", "empty", code=1)
    assert "already exists" in result.stderr


def test_unknown_experiment(invoke: Invoke, seeded: dict[str, str]):
    for args in (["delete", "nope"], ["restore", "nope"], ["rename", "nope", "x"]):
        result = invoke("exp", *args, code=1)
        assert result.stderr.splitlines() == [
            "error: experiment 'nope' does not exist",
            "hint: List experiments with `mltrail exp ls`.",
        ]
        assert result.stdout == ""


def test_deleted_and_all_are_exclusive_flags(invoke: Invoke, seeded: dict[str, str]):
    # Both set the same setting; the last one given wins, as with any repeated option.
    rows = json.loads(invoke("exp", "ls", "--deleted", "--all", "--json").stdout)
    assert len(rows) == 3
