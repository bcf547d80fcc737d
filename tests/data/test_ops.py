"""add, status and checkout against a real project folder."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

import mltrail.data as data
from mltrail.data.ops import link_counts
from mltrail.data.pointer import read_pointer
from mltrail.errors import IntegrityError, InvalidInput, InvalidState, NotFound, StoreNotFound
from mltrail.objects import LocalObjectStore, hashing, read_tree
from tests.data import project, settle, write

__all__ = ["project"]


def _store(root: Path) -> LocalObjectStore:
    return LocalObjectStore(root / ".mltrail" / "objects")


def _dataset(root: Path) -> tuple[Path, Path]:
    csv = write(root / "data" / "customers.csv", "id,name\n1,ann\n")
    images = root / "data" / "images"
    for i in range(5):
        write(images / ("sub" if i % 2 else "") / f"{i}.png", os.urandom(300 + i))
    settle(csv, images)
    return csv, images


# -- add -------------------------------------------------------------------------------------------


def test_add_file_and_folder(project: Path):
    csv, images = _dataset(project)
    added = data.add(["data/customers.csv", "data/images/"])
    assert [(a.path, a.kind, a.changed) for a in added] == [
        ("data/customers.csv", "file", True),
        ("data/images", "dir", True),
    ]
    store = _store(project)
    p = read_pointer(project / "data" / "customers.csv.trail")
    assert (p.kind, p.size, p.nfiles) == ("file", csv.stat().st_size, None)
    assert store.read_bytes(p.hash) == csv.read_bytes()
    d = read_pointer(project / "data" / "images.trail")
    assert (d.kind, d.nfiles) == ("dir", 5)
    tree = read_tree(store, d.hash)
    assert d.size == tree.size == sum(f.stat().st_size for f in images.rglob("*.png"))
    for e in tree:
        assert store.read_bytes(e.hash) == (images / e.path).read_bytes()
    assert (project / "data" / ".gitignore").read_text() == "/customers.csv\n/images\n"
    # The workspace copy stays where it was, still writable.
    assert csv.read_text() == "id,name\n1,ann\n" and os.access(csv, os.W_OK)
    # Machine-local state stays out of Git.
    ignored = (project / ".mltrail" / ".gitignore").read_text().splitlines()
    assert "/cache/" in ignored and "/data.lock" in ignored  # listed by init


def test_re_add_unchanged_is_a_no_op(project: Path, monkeypatch: pytest.MonkeyPatch):
    _dataset(project)
    data.add(["data/customers.csv", "data/images"])
    ptr = project / "data" / "images.trail"
    before = (ptr.stat().st_mtime_ns, ptr.read_text())
    gitignore = (project / "data" / ".gitignore").read_text()
    calls = []
    real = hashing.hash_fd
    monkeypatch.setattr(hashing, "hash_fd", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    again = data.add(["data/customers.csv", "data/images"])
    assert [a.changed for a in again] == [False, False]
    assert [a.hashed for a in again] == [0, 0]
    assert calls == []
    assert (ptr.stat().st_mtime_ns, ptr.read_text()) == before
    assert (project / "data" / ".gitignore").read_text() == gitignore


def test_add_new_version(project: Path):
    csv, _ = _dataset(project)
    first = data.add([csv])[0]
    csv.write_text("id,name\n1,ann\n2,bob\n")
    second = data.add([csv])[0]
    assert second.changed and second.hash != first.hash
    assert read_pointer(project / "data" / "customers.csv.trail").hash == second.hash


def test_add_from_a_subfolder_uses_paths_relative_to_it(project: Path, monkeypatch):
    _dataset(project)
    monkeypatch.chdir(project / "data")
    assert data.add(["customers.csv"])[0].path == "data/customers.csv"


# -- bad input -------------------------------------------------------------------------------------


def test_refuses_paths_outside_the_project(project: Path, tmp_path_factory):
    outside = write(tmp_path_factory.mktemp("elsewhere") / "x.csv", "x")
    with pytest.raises(InvalidInput, match="outside the project"):
        data.add([outside])
    with pytest.raises(InvalidInput, match="outside the project"):
        data.add(["../x.csv"])
    with pytest.raises(InvalidInput, match="outside the project"):
        data.add(["."])


def test_refuses_the_mltrail_folder(project: Path):
    with pytest.raises(InvalidInput, match=r"inside \.mltrail/"):
        data.add([".mltrail/config.toml"])


def test_refuses_symlinks_pointing_outside(project: Path, tmp_path_factory):
    target = write(tmp_path_factory.mktemp("elsewhere") / "big.bin", b"1234")
    (project / "link.bin").symlink_to(target)
    with pytest.raises(InvalidInput, match="points outside the project"):
        data.add(["link.bin"])
    (project / "linkdir").symlink_to(target.parent)
    with pytest.raises(InvalidInput, match="points outside the project"):
        data.add(["linkdir/big.bin"])


def test_refuses_missing_pointer_and_nested_paths(project: Path):
    _dataset(project)
    with pytest.raises(InvalidInput, match="no such file"):
        data.add(["data/nope.csv"])
    data.add(["data/images"])
    with pytest.raises(InvalidInput, match="pointer file"):
        data.add(["data/images.trail"])
    with pytest.raises(InvalidInput, match="already tracked as a whole"):
        data.add(["data/images/0.png"])
    with pytest.raises(InvalidInput, match="no paths"):
        data.add([])


def test_refuses_git_tracked_paths(project: Path):
    _dataset(project)
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True, env=env)
    subprocess.run([*git, "add", "data/customers.csv"], cwd=project, check=True, env=env)
    with pytest.raises(InvalidInput, match="tracked by Git") as err:
        data.add(["data/customers.csv"])
    assert "git rm -r --cached data/customers.csv" in (err.value.hint or "")
    # Untracked paths in the same repository are fine.
    assert data.add(["data/images"])[0].changed


def test_no_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreNotFound, match=r"no \.mltrail folder"):
        data.status()


def test_bad_pointer_is_reported_by_status_and_checkout(project: Path):
    _dataset(project)
    data.add(["data/customers.csv"])
    ptr = project / "data" / "customers.csv.trail"
    ptr.write_text(ptr.read_text().replace("kind: file", "kind: [file"))
    for op in (data.status, data.checkout):
        with pytest.raises(InvalidInput, match=r"customers\.csv\.trail is not valid YAML at line"):
            op()


# -- status ----------------------------------------------------------------------------------------


def _states(**kw) -> dict[str, str]:
    return {s.path: s.state for s in data.status(**kw)}


def test_status_of_each_state(project: Path):
    csv, images = _dataset(project)
    other = write(project / "raw.bin", b"raw")
    settle(other)
    data.add([csv, images, other])
    assert _states() == dict.fromkeys(["data/customers.csv", "data/images", "raw.bin"], "unchanged")

    csv.write_text("changed\n")
    write(images / "new.png", b"n")
    (images / "sub" / "1.png").write_bytes(b"different")
    (images / "2.png").unlink()
    store = _store(project)
    os.unlink(store.path_of(read_pointer(project / "raw.bin.trail").hash))
    statuses = {s.path: s for s in data.status()}
    assert statuses["data/customers.csv"].state == "modified"
    img = statuses["data/images"]
    assert (img.state, img.added, img.modified, img.deleted) == (
        "modified",
        ["new.png"],
        ["sub/1.png"],
        ["2.png"],
    )
    assert statuses["raw.bin"].state == "not in cache"
    assert statuses["raw.bin"].workspace == "unchanged"

    csv.unlink()
    assert data.status(["data/customers.csv"])[0].state == "deleted"
    other.unlink()
    raw = data.status(["raw.bin.trail"])[0]
    assert (raw.state, raw.workspace, raw.in_cache) == ("not in cache", "missing", False)
    with pytest.raises(InvalidInput, match="not tracked"):
        data.status(["data/nothing"])


def test_status_skips_git_and_mltrail_folders(project: Path):
    write(project / ".git" / "x.trail", "junk")
    write(project / ".mltrail" / "y.trail", "junk")
    assert data.status() == []


def test_status_of_unchanged_tree_hashes_nothing(project: Path, monkeypatch):
    _dataset(project)
    data.add(["data/images"])
    monkeypatch.setattr(hashing, "hash_fd", lambda *a, **k: pytest.fail("rehashed"))
    assert _states() == {"data/images": "unchanged"}


# -- checkout --------------------------------------------------------------------------------------


def test_checkout_restores_exact_bytes(project: Path):
    csv, images = _dataset(project)
    want = {p: p.read_bytes() for p in [csv, *images.rglob("*.png")]}
    data.add([csv, images])
    csv.unlink()
    import shutil

    shutil.rmtree(images)
    results = data.checkout()
    assert {r.path: r.written for r in results} == {"data/customers.csv": 1, "data/images": 5}
    for p, content in want.items():
        assert p.read_bytes() == content
    assert set(_states().values()) == {"unchanged"}
    again = data.checkout()
    assert [r.written for r in again] == [0, 0]


def test_hardlinked_files_are_read_only(project: Path):
    csv, _ = _dataset(project)
    data.add([csv])
    csv.unlink()
    [r] = data.checkout(link="hardlink")
    assert r.links == {"hardlink": 1}
    # Root writes through the read-only mode: asked-for hardlinks come with a warning there.
    if os.geteuid() == 0:
        assert "data/customers.csv: 1 file(s) are hardlinks" in r.warning
        assert "unprotect" in r.warning
    else:
        assert r.warning == ""
    st = csv.stat()
    assert st.st_nlink == 2 and stat.S_IMODE(st.st_mode) & 0o222 == 0
    if os.geteuid() != 0:  # root writes through any mode
        with pytest.raises(PermissionError):
            csv.open("a")
    assert data.unprotect([csv]) == 1
    st = csv.stat()
    assert st.st_nlink == 1 and st.st_mode & stat.S_IWUSR
    csv.write_text("edited\n")  # the cache is untouched
    assert _store(project).verify(read_pointer(project / "data" / "customers.csv.trail").hash)


@pytest.mark.parametrize("link", ["copy", "auto"])
def test_copies_are_writable(project: Path, link: str):
    csv, _ = _dataset(project)
    data.add([csv])
    csv.unlink()
    [r] = data.checkout(link=link)
    assert r.links in ({"copy": 1}, {"reflink": 1}) and r.warning == ""
    st = csv.stat()
    assert st.st_mode & stat.S_IWUSR and st.st_nlink == 1


@pytest.mark.parametrize("config", [None, "auto"])
def test_in_place_edit_after_default_checkout_leaves_the_cache_intact(
    project: Path, config: str | None
):
    # The case: as root (CI and most containers) a read-only hardlink is no protection,
    # so the default must never hand out the cached object itself. No config and an existing
    # project's explicit `link = "auto"` behave alike.
    if config:
        cfg = project / ".mltrail" / "config.toml"
        cfg.write_text(cfg.read_text() + f'\n[data]\nlink = "{config}"\n')
    csv, images = _dataset(project)
    data.add([csv, images])
    csv.unlink()
    shutil.rmtree(images)
    results = data.checkout()
    assert "hardlink" not in link_counts(results)
    store = _store(project)
    target = images / "0.png"
    original = target.read_bytes()
    tree = read_tree(store, read_pointer(project / "data" / "images.trail").hash)
    [h] = [e.hash for e in tree if e.path == "0.png"]
    with open(target, "ab") as f:
        f.write(b"x")
    with open(csv, "ab") as f:
        f.write(b"2,bob\n")
    assert store.verify(h) and store.read_bytes(h) == original
    assert store.verify(read_pointer(project / "data" / "customers.csv.trail").hash)
    statuses = {s.path: s for s in data.status()}
    assert statuses["data/customers.csv"].state == "modified"
    assert (statuses["data/images"].state, statuses["data/images"].modified) == (
        "modified",
        ["0.png"],
    )
    data.checkout(force=True)
    assert target.read_bytes() == original
    assert _states() == dict.fromkeys(["data/customers.csv", "data/images"], "unchanged")


def test_status_after_a_copy_checkout_hashes_nothing(project: Path, monkeypatch):
    _, images = _dataset(project)
    data.add([images])
    shutil.rmtree(images)
    [r] = data.checkout(link="copy")
    assert r.written == 5
    # Checkout records the copies it verified in the stat cache: nothing is hashed again.
    monkeypatch.setattr(hashing, "hash_fd", lambda *a, **k: pytest.fail("rehashed"))
    assert _states() == {"data/images": "unchanged"}
    assert [(c.written, c.unchanged) for c in data.checkout()] == [(0, 5)]


def test_hardlinks_of_an_older_checkout_become_copies(project: Path):
    csv, images = _dataset(project)
    data.add([csv, images])
    csv.unlink()
    shutil.rmtree(images)
    data.checkout(link="hardlink")  # what `auto` used to do on filesystems without reflinks
    files = [csv, *sorted(images.rglob("*.png"))]
    assert all(f.stat().st_nlink == 2 for f in files)
    # Asking for hardlinks again leaves them alone; the safe default replaces them.
    assert [c.written for c in data.checkout(link="hardlink")] == [0, 0]
    results = data.checkout()
    assert {c.path: c.written for c in results} == {"data/customers.csv": 1, "data/images": 5}
    assert "hardlink" not in link_counts(results)
    for f in files:
        st = f.stat()
        assert st.st_nlink == 1 and st.st_mode & stat.S_IWUSR
    assert [c.written for c in data.checkout()] == [0, 0]
    assert set(_states().values()) == {"unchanged"}


def test_link_type_from_config(project: Path):
    csv, _ = _dataset(project)
    data.add([csv])
    csv.unlink()
    cfg = project / ".mltrail" / "config.toml"
    cfg.write_text(cfg.read_text() + '\n[data]\nlink = "copy"\n')
    assert data.checkout()[0].links == {"copy": 1}
    cfg.write_text(cfg.read_text().replace('"copy"', '"symlink"'))
    with pytest.raises(InvalidInput, match="unknown data link type 'symlink'"):
        data.checkout()


def test_corrupted_object_is_never_checked_out(project: Path):
    csv, images = _dataset(project)
    data.add([csv, images])
    h = read_pointer(project / "data" / "customers.csv.trail").hash
    obj = _store(project).path_of(h)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"id,name\n1,evil\n")
    csv.unlink()
    for link in ("hardlink", "copy"):
        with pytest.raises(IntegrityError, match="damaged"):
            data.checkout(["data/customers.csv"], link=link)
        assert not csv.exists()
        assert not [p for p in csv.parent.iterdir() if "mltrail-tmp" in p.name]


def test_missing_object_names_dataset_and_file(project: Path):
    _, images = _dataset(project)
    data.add([images])
    tree = read_tree(_store(project), read_pointer(project / "data" / "images.trail").hash)
    os.unlink(_store(project).path_of(tree.entries[0].hash))
    (images / tree.entries[0].path).unlink()
    with pytest.raises(NotFound, match=r"missing in the local cache: data/images/\S+ \(object"):
        data.checkout()


def test_checkout_does_not_overwrite_unrecorded_changes(project: Path):
    csv, _ = _dataset(project)
    data.add([csv])
    csv.write_text("precious edit\n")
    with pytest.raises(InvalidState, match=r"data/customers\.csv"):
        data.checkout()
    assert csv.read_text() == "precious edit\n"
    data.checkout(force=True)
    assert csv.read_text() == "id,name\n1,ann\n"


def test_checkout_keeps_extra_files_and_fixes_modes(project: Path):
    _, images = _dataset(project)
    data.add([images])
    write(images / "extra.txt", "mine")
    (images / "0.png").unlink()
    [r] = data.checkout()
    assert (r.written, r.unchanged) == (1, 4)
    assert (images / "extra.txt").read_text() == "mine"


def test_checkout_switches_between_added_versions_without_force(project: Path):
    csv, images = _dataset(project)
    data.add([csv, images])
    v1 = {p: p.read_text(errors="replace") for p in (project / "data").glob("*.trail")}
    csv.write_text("version 2\n")
    (images / "0.png").write_bytes(b"v2")
    data.add([csv, images])
    for p, text in v1.items():  # what `git checkout` of the old commit does
        p.write_text(text)
    assert {s.state for s in data.status()} == {"modified"}
    data.checkout()
    assert csv.read_text() == "id,name\n1,ann\n"
    assert {s.state for s in data.status()} == {"unchanged"}


def test_reflink_either_works_or_says_why(project: Path):
    csv, _ = _dataset(project)
    data.add([csv])
    csv.unlink()
    try:
        [r] = data.checkout(link="reflink")
    except InvalidInput as e:
        assert "cannot reflink" in e.message and "auto" in (e.hint or "")
        assert not csv.exists()
        assert not [p for p in csv.parent.iterdir() if "mltrail-tmp" in p.name]
    else:
        assert r.links == {"reflink": 1} and csv.stat().st_mode & stat.S_IWUSR


def test_disk_full_during_checkout_leaves_no_partial_files(project: Path, monkeypatch):
    import errno

    from mltrail.data import links

    _, images = _dataset(project)
    data.add([images])
    import shutil

    shutil.rmtree(images)

    def full(src, dst):
        Path(dst).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(links.shutil, "copyfile", full)
    with pytest.raises(InvalidState, match="No space left") as err:
        data.checkout(link="copy")
    assert "Free some disk space" in (err.value.hint or "")
    leftovers = [p for p in images.rglob("*") if p.is_file()]
    assert leftovers == []


def test_status_does_not_walk_virtualenvs(project: Path):
    write(project / ".venv" / "pyvenv.cfg", "home = /usr\n")
    write(project / ".venv" / "lib" / "stray.trail", "not a pointer at all")
    write(project / "data.csv", "a\n")
    settle(project / "data.csv")
    data.add(["data.csv"])
    assert [s.path for s in data.status()] == ["data.csv"]
