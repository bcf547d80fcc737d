"""Revisions from before an import: GitRepo reads their pointers through the imported table."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltrail.data.git import GitRepo
from mltrail.data.imported import ImportedBlob, read_imported, write_imported
from mltrail.data.pointer import Pointer, write_pointer
from mltrail.errors import CorruptStore
from tests.data import git, project, write

__all__ = ["project"]

A = Pointer("a" * 64, "file", 3)
B = Pointer("b" * 64, "dir", 10, 2)
C = Pointer("c" * 64, "file", 5)


def _blob(root: Path, rel: str) -> str:
    return git(root, "rev-parse", f"HEAD:{rel}").strip()


@pytest.fixture
def imported(project: Path) -> Path:
    """v1: a foreign pointer file for data/x; v2: it changed; v3: the cutover to x.trail."""
    git(project, "init", "-q")
    write(project / "data/x.foreign", "version 1\n")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "v1")
    git(project, "tag", "v1")
    b1 = _blob(project, "data/x.foreign")
    write(project / "data/x.foreign", "version 2\n")
    write(project / "other.txt", "a commit that does not touch data/x\n")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "v2")
    git(project, "tag", "v2")
    b2 = _blob(project, "data/x.foreign")
    write(project / "data/x.foreign", "version 3, never translated\n")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "unknown")
    write(project / "data/x.foreign", "version 2\n")
    write_pointer(project / "data/x.trail", C)
    table = {
        b1: ImportedBlob("test", ["data/x.foreign"], {"x": A, "../top": B}),
        b2: ImportedBlob("test", ["data/x.foreign"], {"x": C}, {"y": "nowhere"}),
    }
    assert write_imported(project / ".mltrail", table)
    assert not write_imported(project / ".mltrail", table)  # the same table: nothing written
    git(project, "add", "-A")
    git(project, "commit", "-qm", "cutover")
    git(project, "tag", "v3")
    return project


def test_a_revision_without_trail_files_takes_the_translated_pointers(imported: Path) -> None:
    repo = GitRepo(imported)
    assert repo.pointers_at("v1") == {"data/x": A, "top": B}
    assert repo.pointers_at("v2") == {"data/x": C}
    assert repo.pointer_at("v1", "data/x") == A
    assert repo.pointer_at("v1", "nothing") is None
    assert repo.pointers_at("v3") == {"data/x": C}  # the .trail file


def test_a_trail_file_wins_over_a_translation(imported: Path) -> None:
    write_pointer(imported / "data/x.trail", B)
    git(imported, "add", "-A")
    git(imported, "commit", "-qm", "x.trail names B, x.foreign still has blob 2 (C)")
    assert GitRepo(imported).pointers_at("HEAD")["data/x"] == B


def test_history_spans_the_translated_and_the_trail_versions(imported: Path) -> None:
    commits = GitRepo(imported).history("data/x")
    # v1 (A), v2 (C); the untranslated version and the cutover (C again) are no new versions.
    assert [c.pointer for c in commits] == [C, A]
    assert [c.subject for c in commits] == ["v2", "v1"]


def test_all_pointers_keeps_every_translated_version(imported: Path) -> None:
    found = GitRepo(imported).all_pointers()
    assert {A, B, C} <= set(found)


def test_a_damaged_table_is_named(imported: Path) -> None:
    (imported / ".mltrail/imported-pointers.json").write_text("{not json")
    with pytest.raises(CorruptStore, match=r"imported-pointers\.json is not valid JSON"):
        read_imported(imported / ".mltrail")
