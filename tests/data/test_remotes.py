"""Remote configuration in .mltrail/config.toml: add, list, default, remove, bad input."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mltrail.data import remotes
from mltrail.errors import AlreadyExists, CorruptStore, InvalidInput, NotFound
from mltrail.objects import LocalObjectStore
from tests.data import project

__all__ = ["project"]


def _dir(root: Path) -> Path:
    return root / ".mltrail"


def test_first_remote_is_the_default_and_comments_survive(project: Path):
    config = _dir(project) / "config.toml"
    config.write_text(config.read_text() + '# keep me\n[data]\nlink = "copy"  # why\n')
    remotes.add_remote(_dir(project), "origin", "../store")
    remotes.add_remote(_dir(project), "backup", "s3://bucket/prefix", endpoint_url="http://h:9")
    listed = remotes.list_remotes(_dir(project))
    assert [(r.name, r.url, r.endpoint_url, r.default) for r in listed] == [
        ("backup", "s3://bucket/prefix", "http://h:9", False),
        ("origin", "../store", None, True),
    ]
    text = config.read_text()
    assert "# keep me" in text and 'link = "copy"  # why' in text
    assert tomllib.loads(text)["core"]["remote"] == "origin"
    remotes.set_default_remote(_dir(project), "backup")
    assert remotes.get_remote(_dir(project)).name == "backup"
    remotes.remove_remote(_dir(project), "backup")
    assert "remote" not in tomllib.loads(config.read_text())["core"]
    # One remote left and no default: it is the one used.
    assert remotes.get_remote(_dir(project)).name == "origin"
    assert 'link = "copy"' in config.read_text()


def test_replace_needs_force(project: Path):
    remotes.add_remote(_dir(project), "origin", "/a")
    with pytest.raises(AlreadyExists, match="'origin' already exists"):
        remotes.add_remote(_dir(project), "origin", "/b")
    remotes.add_remote(_dir(project), "origin", "/b", force=True)
    assert remotes.get_remote(_dir(project), "origin").url == "/b"
    assert (_dir(project) / "config.toml").read_text().count("[remote.origin]") == 1


@pytest.mark.parametrize(
    ("name", "url", "message"),
    [
        ("bad name", "/x", "invalid remote name 'bad name'"),
        ("a.b", "/x", "invalid remote name"),
        ("ok", "", "the remote URL is empty"),
        ("ok", "s3://", "names no bucket"),
        ("ok", "ftp://host/x", "unsupported remote URL"),
        ("ok", "http://", "names no host"),
    ],
)
def test_bad_names_and_urls(project: Path, name: str, url: str, message: str):
    before = (_dir(project) / "config.toml").read_text()
    with pytest.raises(InvalidInput, match=message):
        remotes.add_remote(_dir(project), name, url)
    assert (_dir(project) / "config.toml").read_text() == before


def test_endpoint_only_for_s3(project: Path):
    with pytest.raises(InvalidInput, match="only applies to s3://"):
        remotes.add_remote(_dir(project), "o", "/x", endpoint_url="http://h")
    with pytest.raises(InvalidInput, match="not an http"):
        remotes.add_remote(_dir(project), "o", "s3://b", endpoint_url="h:9")


def test_unknown_and_missing_default(project: Path):
    with pytest.raises(NotFound, match="no default remote") as err:
        remotes.get_remote(_dir(project))
    assert "mltrail remote add" in (err.value.hint or "")
    remotes.add_remote(_dir(project), "a", "/a")
    remotes.add_remote(_dir(project), "b", "/b")
    remotes.remove_remote(_dir(project), "a")
    remotes.add_remote(_dir(project), "c", "/c")
    with pytest.raises(NotFound, match=r"no remote named 'zz' \(configured: b, c\)"):
        remotes.get_remote(_dir(project), "zz")
    with pytest.raises(NotFound, match="no remote named 'zz'"):
        remotes.remove_remote(_dir(project), "zz")


def test_broken_config_is_reported_not_overwritten(project: Path):
    config = _dir(project) / "config.toml"
    config.write_text("[remote.origin]\nurl = \n")
    with pytest.raises(CorruptStore, match="not valid TOML"):
        remotes.add_remote(_dir(project), "x", "/x")
    assert config.read_text() == "[remote.origin]\nurl = \n"
    config.write_text("[remote.origin]\npath = '/x'\n")
    with pytest.raises(CorruptStore, match="has no url"):
        remotes.list_remotes(_dir(project))
    config.write_text("[remote.origin]\nurl = '/x'\ncolour = 1\n")
    with pytest.raises(CorruptStore, match="unknown key 'colour'"):
        remotes.list_remotes(_dir(project))


def test_open_relative_folder_and_refuse_own_cache(project: Path):
    r = remotes.add_remote(_dir(project), "o", "../remote")
    store = remotes.open_remote(project, r)
    assert isinstance(store, LocalObjectStore)
    assert store.root == project.parent / "remote"
    own = remotes.add_remote(_dir(project), "own", ".mltrail/objects")
    with pytest.raises(InvalidInput, match="the project's own cache"):
        remotes.open_remote(project, own)
