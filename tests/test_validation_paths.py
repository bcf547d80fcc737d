"""Artifact paths: traversal in any spelling is refused; downloads never leave their folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mltrail import MltrailClient
from mltrail.errors import InvalidInput, InvalidKey
from mltrail.validation import check_artifact_path


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("..\\x", "'..'"),
        ("a\\..\\..\\x", "'..'"),
        (".. /x", "'..'"),  # Windows drops the trailing space
        ("/etc/passwd", "absolute"),
        ("\\x", "absolute"),
        ("\\\\server\\share\\x", "absolute"),
        ("C:\\Windows\\x", "absolute"),
        ("C:/x", "absolute"),
        ("c:x", "absolute"),
        ("a\x00b", "control character"),
        ("a\tb", "control character"),
        ("a\x7fb", "control character"),
        ("a\x9bb", "control character"),
        ("%2e%2e/x", "once URL-decoded"),
        ("a/%2E%2E/x", "once URL-decoded"),
        ("..%2fx", "once URL-decoded"),
        ("..%5cx", "once URL-decoded"),
        ("%252e%252e/x", "once URL-decoded"),
        ("%2fetc/passwd", "absolute"),
        ("a%00b", "control character"),
        ("./x", "'.'"),
        ("a//b", "empty ones"),
        ("", "empty"),
        ("/", "empty"),
    ],
)
def test_unsafe_artifact_paths_are_refused(path: str, why: str) -> None:
    with pytest.raises(InvalidKey, match=why) as info:
        check_artifact_path(path)
    assert repr(path) in info.value.message
    assert info.value.hint


@pytest.mark.parametrize(
    ("path", "clean"),
    [
        ("model/weights.bin", "model/weights.bin"),
        ("dir/", "dir"),
        ("dir\\file.txt", "dir/file.txt"),
        ("x..y/..z/z..", "x..y/..z/z.."),
        ("100%.txt", "100%.txt"),
        ("a%2fb", "a%2fb"),  # decodes to a/b: no traversal in it
        ("notes: v1.txt", "notes: v1.txt"),
        ("données/é.csv", "données/é.csv"),
    ],
)
def test_safe_artifact_paths_pass(path: str, clean: str) -> None:
    assert check_artifact_path(path) == clean


def test_check_artifact_path_refuses_non_strings() -> None:
    with pytest.raises(InvalidKey, match="must be a string"):
        check_artifact_path(None)  # type: ignore[arg-type]


# -- downloads and symlinks ----------------------------------------------------------------------


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[tuple[MltrailClient, str]]:
    client = MltrailClient(f"sqlite:///{tmp_path / 'm.db'}", objects=str(tmp_path / "objects"))
    run = client.create_run(client.create_experiment("e")).info.run_id
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "x").write_text("payload")
    (source / "top.txt").write_text("top")
    client.log_artifacts(run, source)
    client.flush()
    yield client, run
    client.close()


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_download_never_writes_through_a_symlink_out_of_dest(
    logged: tuple[MltrailClient, str], tmp_path: Path
) -> None:
    client, run = logged
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInput, match="outside") as info:
        client.download_artifacts(run, None, dest)
    assert str(dest / "sub") in info.value.message
    assert os.listdir(outside) == []
    # Checked before anything is written: not even the file beside the link arrived.
    assert sorted(os.listdir(dest)) == ["sub"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_folder_download_into_a_symlinked_name_is_refused(
    logged: tuple[MltrailClient, str], tmp_path: Path
) -> None:
    client, run = logged
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInput, match="symbolic link"):
        client.download_artifacts(run, "sub", dest)  # lands in dest/sub, the link
    assert os.listdir(outside) == []


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinks_that_stay_inside_dest_and_a_symlinked_dest_are_fine(
    logged: tuple[MltrailClient, str], tmp_path: Path
) -> None:
    client, run = logged
    real = tmp_path / "real"
    real.mkdir()
    dest = tmp_path / "dest"
    dest.symlink_to(real, target_is_directory=True)  # the user chose this folder
    (real / "elsewhere").mkdir()
    (real / "sub").symlink_to(real / "elsewhere", target_is_directory=True)
    client.download_artifacts(run, None, dest)
    assert (real / "elsewhere" / "x").read_text() == "payload"
    assert (real / "top.txt").read_text() == "top"
