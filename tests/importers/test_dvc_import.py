"""``mltrail import dvc`` on repositories the real dvc 3.67 built: data, pipeline, remotes."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("dvc")

from tests.importers.dvc_repo import Repo, build_repo, cache_file, small_repo, tool_env

V1 = "id,x\n1,a\n2,b\n3,c\n"
V3 = "id,x\n1,a\n2,b\n3,c\n4,d\n5,e\n6,f\n"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """The DVC repository every test starts from (never modified: tests work on copies)."""
    base = tmp_path_factory.mktemp("dvc-source")
    return build_repo(base / "repo", tool_env(base / "home"))


def copy_of(source: Repo, dest: Path) -> Repo:
    """A copy of the source repository and of its local remote beside it."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source.root.parent / "remote", dest / "remote")
    return source.copy(dest / "repo")


def import_json(repo: Repo, *args: str) -> tuple[int, dict]:
    done = repo.mltrail("import", "dvc", "--json", *args)
    assert "Traceback" not in done.stderr, done.stderr
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"not JSON ({done.returncode}): {done.stdout}\n{done.stderr}")


@pytest.fixture(scope="module")
def imported(source: Repo, tmp_path_factory: pytest.TempPathFactory) -> tuple[Repo, dict]:
    """A copy of the source, imported once with the CLI."""
    repo = copy_of(source, tmp_path_factory.mktemp("dvc-imported"))
    code, report = import_json(repo)
    assert code == 0, report["skipped"]
    return repo, report


def b3(path: Path) -> str:
    from blake3 import blake3

    return blake3(path.read_bytes()).hexdigest()


def dvc_state(root: Path) -> dict[str, str]:
    """The md5 of every DVC file and cache object: what an import must never change."""
    files = [*root.joinpath(".dvc").rglob("*"), *root.rglob("*.dvc"), root / "dvc.yaml"]
    files.append(root / "dvc.lock")
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in files
        if p.is_file() and "tmp" not in p.relative_to(root).parts
    }


# -- pointers and objects --------------------------------------------------------------------------


def test_pointers_name_the_same_bytes_and_the_workspace_is_clean(imported: tuple) -> None:
    repo, report = imported
    from mltrail.data import read_pointer, status

    root = repo.root
    raw = read_pointer(root / "data/raw.csv.trail")
    assert (raw.kind, raw.hash, raw.size) == ("file", b3(root / "data/raw.csv"), len(V3))
    images = read_pointer(root / "data/images.trail")
    assert (images.kind, images.nfiles) == ("dir", 4)
    for out in ("out/prepared", "out/model.bin", "gen/greet-en.txt", "gen/greet-fr.txt"):
        assert (root / f"{out}.trail").is_file(), out
    assert not (root / "out/log.txt.trail").exists()  # cache: false
    assert not (root / "out/metrics.json.trail").exists()
    states = {s.path: s.state for s in status(start=root)}
    assert states and set(states.values()) == {"unchanged"}, states
    from mltrail.objects.tree import read_tree

    store = repo.root / ".mltrail/objects"
    from mltrail.objects.local import LocalObjectStore

    tree = read_tree(LocalObjectStore(store), images.hash)
    assert [e.path for e in tree] == [f"img{i}.bin" for i in range(4)]
    assert all(LocalObjectStore(store).verify(e.hash) for e in tree)
    assert report["skipped"] == [] and report["unavailable"] == []


def test_pipeline_converted_and_repro_runs_nothing(imported: tuple) -> None:
    repo, _ = imported
    from mltrail.pipeline.runner import repro
    from mltrail.pipeline.spec import load

    pipeline = load(repo.root)
    assert list(pipeline.stages) == ["prepare", "train", "greet@en", "greet@fr"]
    train = pipeline.stages["train"]
    assert {(o.path, o.cache, o.persist) for o in train.outs} == {
        ("out/model.bin", True, False),
        ("out/log.txt", False, True),
    }
    assert [(m.path, m.cache) for m in train.metrics] == [("out/metrics.json", False)]
    assert {(p.file, p.key) for p in train.params} == {
        ("params.yaml", "train"),
        ("extra.json", "seed"),
    }
    assert pipeline.stages["greet@fr"].wdir == "gen"
    text = (repo.root / "mltrail.yaml").read_text()
    assert "foreach:" in text  # the group is kept, not written out stage by stage
    log = (repo.root / "out/log.txt").read_text()
    result = repro(start=repo.root)
    assert [(s.name, s.action) for s in result.stages] == [
        ("prepare", "unchanged"),
        ("train", "unchanged"),
        ("greet@en", "unchanged"),
        ("greet@fr", "unchanged"),
    ]
    assert (repo.root / "out/log.txt").read_text() == log  # nothing ran


def test_second_run_changes_nothing(imported: tuple) -> None:
    repo, _ = imported
    before = repo.git("status", "--porcelain", "--untracked-files=all").stdout
    trails = {p: p.stat().st_mtime_ns for p in repo.root.rglob("*.trail")}
    code, report = import_json(repo)
    assert code == 0
    assert report["changed"] == [] and report["pointers_written"] == 0
    assert report["objects_stored"] == 0
    assert (report["runs_imported"], report["runs_existing"]) == (0, 7)
    assert report["model_versions"] == 0
    assert repo.git("status", "--porcelain", "--untracked-files=all").stdout == before
    assert {p: p.stat().st_mtime_ns for p in repo.root.rglob("*.trail")} == trails


def test_cutover_lines_name_the_dvc_and_mltrail_files(imported: tuple) -> None:
    _, report = imported
    add, rm, commit = report["cutover"]  # added first: a failing add removes nothing
    assert rm.startswith("git --literal-pathspecs rm")
    assert "data/raw.csv.dvc" in rm and "dvc.lock" in rm
    assert ".dvc/config" in rm and ".dvc/.gitignore" not in rm
    assert add.startswith("git --literal-pathspecs add -f")
    assert "data/raw.csv.trail" in add and "mltrail.lock" in add
    assert ".mltrail/imported-pointers.json" in add and commit.startswith("git commit")


# -- history ---------------------------------------------------------------------------------------


def test_old_revisions_resolve_through_the_recorded_versions(imported: tuple) -> None:
    repo, report = imported
    import mltrail.data as data
    from mltrail.data.version import dataset_log

    root = repo.root
    with data.open(root / "data/raw.csv", rev="v1.0", mode="r", start=root) as f:
        assert f.read() == V1
    with data.open(root / "data/images/img0.bin", rev="v1.0", start=root) as f:
        assert f.read() == b"image 0\n"
    with data.open(root / "out/model.bin", rev="v2.0", mode="r", start=root) as f:
        assert f.read() == "model 3 3 0.1 7"  # 3 train rows, epochs 3 at v2.0
    changes = {d.path: d for d in data.diff("v1.0", start=root)}
    assert changes["data/raw.csv"].change == "modified"
    assert changes["data/images"].added == ["img3.bin"]
    assert changes["out/prepared"].change == "added"
    log = dataset_log(root / "data/raw.csv", start=root)
    assert len(log.versions) == 3
    assert [len(v.commits) for v in log.versions] == [1, 1, 1]
    assert log.versions[0].current
    assert report["history_versions"] >= 9


# -- remotes, push and a fresh clone ---------------------------------------------------------------


def test_push_then_a_fresh_clone_pulls_every_byte(source: Repo, tmp_path: Path) -> None:
    repo = copy_of(source, tmp_path / "a")
    code, report = import_json(repo, "--remove-dvc")
    assert code == 0, report["skipped"]
    assert report["remotes_added"] == 1
    remotes = repo.mltrail("remote", "list", "--json", check=True)
    [remote] = json.loads(remotes.stdout)
    assert remote["name"] == "store" and remote["default"]
    assert remote["url"].endswith("remote-mltrail")
    tracked = repo.git("ls-files").stdout.split()
    assert "data/raw.csv.dvc" not in tracked and "dvc.lock" not in tracked
    assert "data/raw.csv.trail" in tracked and ".mltrail/imported-pointers.json" in tracked
    assert (repo.root / "data/raw.csv.dvc").exists() is False
    assert (repo.root / ".dvc/cache").is_dir()  # DVC's cache is never touched
    repo.git("commit", "-q", "-m", "Move to mltrail")
    repo.mltrail("data", "push", check=True)
    clone = Repo(tmp_path / "a" / "clone", repo.env)
    repo.run("git", "clone", "-q", str(repo.root), str(clone.root))
    clone.mltrail("data", "pull", check=True)
    for rel in ("data/raw.csv", "data/images/img3.bin", "out/prepared/train.csv", "out/model.bin"):
        assert (clone.root / rel).read_bytes() == (repo.root / rel).read_bytes(), rel
    from mltrail.pipeline.runner import repro

    # The lock came across: in the clone too nothing runs.
    assert {s.action for s in repro(start=clone.root).stages} == {"unchanged"}
    # Versions from before the cutover: pushed with --all-commits, the clone opens them.
    import mltrail.data as data

    repo.mltrail("data", "push", "--all-commits", check=True)
    with data.open(clone.root / "data/raw.csv", rev="v1.0", mode="r", start=clone.root) as f:
        assert f.read() == V1


def test_objects_come_from_the_remote_when_not_cached(source: Repo, tmp_path: Path) -> None:
    repo = copy_of(source, tmp_path / "b")
    shutil.rmtree(repo.root / ".dvc/cache")
    (repo.root / "data/raw.csv").unlink()
    shutil.rmtree(repo.root / "data/images")
    code, report = import_json(repo, "--no-history")
    assert code == 0, report["skipped"]
    assert report["objects_from_remote"] >= 5
    repo.mltrail("data", "checkout", check=True)
    assert (repo.root / "data/raw.csv").read_text() == V3
    assert (repo.root / "data/images/img2.bin").read_text() == "image 2\n"


# -- bad input -------------------------------------------------------------------------------------


def test_missing_and_damaged_objects_are_named_and_the_rest_imported(
    source: Repo, tmp_path: Path
) -> None:
    repo = copy_of(source, tmp_path / "c")
    root = repo.root
    shutil.rmtree(root.parent / "remote")  # the cache is the only source left
    img1 = hashlib.md5(b"image 1\n").hexdigest()
    cache_file(root, img1).unlink()
    (root / "data/images/img1.bin").unlink()
    raw = hashlib.md5(V3.encode()).hexdigest()
    damaged = cache_file(root, raw)
    damaged.chmod(0o644)
    damaged.write_text("not the data\n")
    (root / "data/raw.csv").write_text("edited, not what DVC recorded\n")
    # A dvc.yaml part mltrail has no place for.
    (root / "dvc.yaml").write_text((root / "dvc.yaml").read_text() + "plots:\n  - out/p.csv\n")
    (root / "params.yaml").write_text("prepare:\n  split: 0.5\ntrain:\n  epochs: 9\n  lr: 0.1\n")
    before = dvc_state(root)
    done = repo.mltrail("import", "dvc")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    out = " ".join(done.stdout.split())
    assert f"data/images.dvc: images: img1.bin: object {img1} is in none of DVC's cache" in out
    assert f"data/raw.csv.dvc: raw.csv: object {raw} does not match its MD5" in out
    assert "dvc.yaml plots" in out
    assert "stage train: params.yaml" not in out  # params only: a stale stage, not an error
    assert (root / "out/model.bin.trail").exists()  # the rest came across
    assert not (root / "data/raw.csv.trail").exists()
    assert dvc_state(root) == before  # DVC's files and cache are only read
    from mltrail.pipeline.runner import repro

    result = {s.name: s.action for s in repro(start=root, dry=True).stages}
    assert result["prepare"] == "would run"  # its dep data/raw.csv changed
    assert result["greet@en"] == "unchanged"


def test_not_a_dvc_repository(tmp_path: Path) -> None:
    r = Repo(tmp_path, tool_env(tmp_path / "home"))
    done = r.mltrail("import", "dvc", str(tmp_path))
    assert done.returncode not in (0, 1) or "not a DVC repository" in done.stderr + done.stdout
    assert "is not a DVC repository" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / ".mltrail").exists()


def test_dry_run_writes_nothing(source: Repo, tmp_path: Path) -> None:
    repo = copy_of(source, tmp_path / "d")
    before = repo.git("status", "--porcelain", "--untracked-files=all").stdout
    code, report = import_json(repo, "--dry-run")
    assert code == 0 and report["dry_run"]
    assert report["pointers_written"] == 6 and report["stages"] == 4
    assert not (repo.root / ".mltrail").exists()
    assert repo.git("status", "--porcelain", "--untracked-files=all").stdout == before


# -- S3 -------------------------------------------------------------------------------------------


def test_s3_remote(tmp_path: Path, s3_endpoint: str, s3_client, bucket: str) -> None:
    from tests.s3server import FAKE_AWS_ENV

    env = {**tool_env(tmp_path / "home"), **FAKE_AWS_ENV}
    r = Repo(tmp_path / "repo", env)
    r.root.mkdir()
    r.git("init", "-q")
    r.dvc("init", "-q")
    r.dvc("remote", "add", "-d", "s3", f"s3://{bucket}/dvcstore")
    r.dvc("remote", "modify", "s3", "endpointurl", s3_endpoint)
    r.write("data.txt", "on s3\n")
    r.write("folder/a.txt", "a\n")
    r.write("folder/sub/b.txt", "b\n")
    r.dvc("add", "-q", "data.txt", "folder")
    r.commit("data")
    r.dvc("push", "-q")
    shutil.rmtree(r.root / ".dvc/cache")
    (r.root / "data.txt").unlink()
    shutil.rmtree(r.root / "folder")
    done = r.mltrail("import", "dvc", "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 0, report["skipped"]
    assert report["objects_from_remote"] == 3
    remotes = json.loads(r.mltrail("remote", "list", "--json", check=True).stdout)
    assert remotes == [
        {
            "name": "s3",
            "url": f"s3://{bucket}/dvcstore-mltrail",
            "endpoint_url": s3_endpoint,
            "default": True,
        }
    ]
    r.mltrail("data", "push", check=True)
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.startswith("dvcstore-mltrail/") for k in keys)
    r.mltrail("data", "checkout", check=True)
    assert (r.root / "folder/sub/b.txt").read_text() == "b\n"


# -- runs and the registry -------------------------------------------------------------------------


def test_lock_commits_and_experiments_become_runs(imported: tuple) -> None:
    repo, report = imported
    from mltrail.tracking.client import MltrailClient

    assert report["runs_imported"] == 7
    client = MltrailClient(f"sqlite:///{repo.root / '.mltrail/mltrail.db'}", create=False)
    try:
        exp = client.get_experiment_by_name("repo")
        runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])} if exp else {}
        names = sorted(r.info.run_name for r in client.search_runs([exp.experiment_id]))
        assert names == sorted(
            ["prepare", "train", "greet@en", "greet@fr", "prepare", "train", "ep7/train"]
        )
        ep7 = runs["ep7/train"]
        assert ep7.data.params["train.epochs"] == "7" and ep7.data.params["extra.json:seed"] == "7"
        assert ep7.data.metrics["acc"] == pytest.approx(0.57)
        assert ep7.data.tags["mltrail.dvc.experiment"] == "ep7"
        assert ep7.info.status == "FINISHED"
        v3 = repo.git("rev-parse", "v3.0").stdout.strip()
        trains = [r for r in client.search_runs([exp.experiment_id]) if r.info.run_name == "train"]
        [at_v3] = [r for r in trains if r.data.tags["mltrail.git.commit"] == v3]
        assert at_v3.data.params["train.epochs"] == "5"
        assert at_v3.data.metrics["loss.val"] == pytest.approx(0.25)
    finally:
        client.close()


def test_gto_tags_become_registry_versions(imported: tuple) -> None:
    repo, report = imported
    from mltrail.tracking.client import MltrailClient

    assert report["model_versions"] == 2
    client = MltrailClient(f"sqlite:///{repo.root / '.mltrail/mltrail.db'}", create=False)
    try:
        versions = {mv.version: mv for mv in client.search_model_versions("model")}
        assert {n: mv.tags["gto.version"] for n, mv in versions.items()} == {
            1: "v1.0.0",
            2: "v1.1.0",
        }
        assert client.get_model_version_by_alias("model", "prod").version == 2
        from mltrail.objects.tree import read_tree

        [entry] = read_tree(client.objects, versions[2].tree_hash)
        assert entry.path == "model.bin"
        assert client.objects.read_bytes(entry.hash) == (repo.root / "out/model.bin").read_bytes()
        [old] = read_tree(client.objects, versions[1].tree_hash)
        assert client.objects.read_bytes(old.hash) == b"model 3 3 0.1 7"  # as at v2.0
    finally:
        client.close()


MATRIX_YAML = """\
stages:
  grid:
    matrix:
      model: [cnn, rnn]
      lr: [0.1, 1]
    cmd: echo ${item.model} ${item.lr} > out-${item.model}-${item.lr}.txt
    outs:
      - out-${item.model}-${item.lr}.txt
  per:
    foreach:
      us: {n: 1}
      eu: {n: 2}
    do:
      cmd: echo ${key} ${item.n} > ${key}.txt
      outs: ["${key}.txt"]
  flags:
    foreach: [true, false]
    do:
      cmd: echo ${item} > flag-${item}.txt
      outs: ["flag-${item}.txt"]
"""


def test_matrix_and_foreach_groups_expand_as_in_dvc(tmp_path: Path) -> None:
    r = Repo(tmp_path / "repo", tool_env(tmp_path / "home"))
    r.root.mkdir()
    r.git("init", "-q")
    r.dvc("init", "-q")
    r.write("dvc.yaml", MATRIX_YAML)
    r.dvc("repro", "-q")
    dvc_names = r.dvc("stage", "list", "--name-only").stdout.split()
    code, report = import_json(r, "--no-history")
    assert code == 0, report["skipped"]
    from mltrail.pipeline.runner import repro
    from mltrail.pipeline.spec import load

    assert list(load(r.root).stages) == dvc_names  # grid@cnn-0.1 … flags@false
    assert "matrix:" in (r.root / "mltrail.yaml").read_text()
    assert {s.action for s in repro(start=r.root).stages} == {"unchanged"}


def test_out_paths_outside_the_repository_are_skipped(tmp_path: Path) -> None:
    r = small_repo(tmp_path / "repo", tool_env(tmp_path / "home"))
    md5 = hashlib.md5(b"some data\n").hexdigest()
    (tmp_path / "escaped.txt").write_text("some data\n")
    absolute = tmp_path / "abs.txt"
    absolute.write_text("some data\n")
    for name, path in (("escape", "../escaped.txt"), ("abs", str(absolute)), ("url", "s3://b/k")):
        r.write(f"{name}.dvc", f"outs:\n- md5: {md5}\n  size: 10\n  hash: md5\n  path: {path}\n")
    r.write("sub/wdir.dvc", f"wdir: ../..\nouts:\n- md5: {md5}\n  hash: md5\n  path: x.txt\n")
    r.commit("bad pointers")
    code, report = import_json(r)
    assert code == 1
    reasons = {s["what"]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {
        "escape.dvc: ../escaped.txt",
        f"abs.dvc: {absolute}",
        "url.dvc: s3://b/k",
        "sub/wdir.dvc: x.txt",
    }
    assert all("outside the repository" in why for why in reasons.values()), reasons
    assert sorted(p.name for p in tmp_path.iterdir()) == ["abs.txt", "escaped.txt", "home", "repo"]
    assert (r.root / "data.txt.trail").is_file()  # the rest came across


def _dir_listing(root: Path, rows: list[tuple[str, bytes]]) -> str:
    """Put the files and a ``.dir`` listing of ``(relpath, bytes)`` in DVC's cache; its md5."""
    canon = []
    for rel, data in rows:
        md5 = hashlib.md5(data).hexdigest()
        cache_file(root, md5).parent.mkdir(parents=True, exist_ok=True)
        cache_file(root, md5).write_bytes(data)
        canon.append({"md5": md5, "relpath": rel})
    text = json.dumps(sorted(canon, key=lambda d: d["relpath"]), sort_keys=True).encode()
    md5 = hashlib.md5(text).hexdigest()
    cache_file(root, md5).parent.mkdir(parents=True, exist_ok=True)
    cache_file(root, md5 + ".dir").write_bytes(text)
    return md5 + ".dir"


def test_dir_listings_with_paths_outside_their_folder_are_skipped(tmp_path: Path) -> None:
    r = small_repo(tmp_path / "repo", tool_env(tmp_path / "home"))
    (tmp_path / "evil").write_text("outside\n")
    for name, bad in (("up", "../../evil"), ("abs", str(tmp_path / "evil")), ("empty", "")):
        md5 = _dir_listing(r.root, [("ok.txt", b"ok\n"), (bad, b"outside\n")])
        r.write(f"{name}.dvc", f"outs:\n- md5: {md5}\n  hash: md5\n  path: {name}\n")
    code, report = import_json(r, "--no-history")
    assert code == 1
    reasons = {s["what"]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"up.dvc: up", "abs.dvc: abs", "empty.dvc: empty"}
    assert all("unsafe tree entry path" in why for why in reasons.values()), reasons
    assert (r.root / "data.txt.trail").is_file()  # the rest came across
    assert not any((r.root / f"{n}.trail").exists() for n in ("up", "abs", "empty"))
    assert report["objects_stored"] == 1  # data.txt only: nothing of a bad listing was read


def test_data_log_through_a_merge_that_resolved_a_dvc_conflict(tmp_path: Path) -> None:
    r = small_repo(tmp_path / "repo", tool_env(tmp_path / "home"))
    r.git("checkout", "-q", "-b", "side")
    r.write("data.txt", "side\n")
    r.dvc("add", "-q", "data.txt")
    r.commit("side")
    r.git("checkout", "-q", "main")
    r.write("data.txt", "main\n")
    r.dvc("add", "-q", "data.txt")
    r.commit("main")
    assert r.run("git", "merge", "-q", "side", check=False).returncode != 0  # data.txt.dvc
    (r.root / "data.txt.dvc").unlink()  # its conflict markers: dvc add would not parse it
    r.write("data.txt", "main and side\n")
    r.dvc("add", "-q", "data.txt")
    r.commit("merge side")
    code, report = import_json(r)
    assert code == 0, report["skipped"]
    done = r.mltrail("data", "log", "--json", "data.txt")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    subjects = [c["subject"] for v in json.loads(done.stdout)["versions"] for c in v["commits"]]
    assert subjects[0] == "merge side"  # the version the merge made, against main
    assert sorted(subjects) == ["data", "main", "merge side", "side"]


def test_remove_dvc_only_when_nothing_was_left_out(tmp_path: Path) -> None:
    files = {"data.txt": "some data\n", "gone.txt": "gone\n"}
    r = small_repo(tmp_path / "repo", tool_env(tmp_path / "home"), files)
    cache_file(r.root, hashlib.md5(b"gone\n").hexdigest()).unlink()
    (r.root / "gone.txt").unlink()
    tracked = r.git("ls-files").stdout.split()
    code, report = import_json(r, "--remove-dvc")
    assert code == 1
    [refused] = [s for s in report["skipped"] if s["what"] == "--remove-dvc"]
    assert "not run" in refused["reason"] and report["removed"] == []
    assert r.git("ls-files").stdout.split() == tracked  # nothing removed, nothing staged
    assert r.git("diff", "--cached", "--name-only").stdout == ""
    assert "gone.txt.dvc" not in " ".join(report["cutover"])  # its data got no pointer
    r.git("rm", "-q", "gone.txt.dvc")
    r.git("commit", "-q", "-m", "drop gone.txt")
    done = r.mltrail("import", "dvc", "--remove-dvc")  # the files are written: only the git rm
    assert done.returncode == 0, done.stdout + done.stderr
    text = " ".join(done.stdout.split())
    assert "Nothing in the repository changed" not in text
    assert "Removed from Git (git rm):" in text and "data.txt.dvc" in text
    tracked = r.git("ls-files").stdout.split()
    assert "data.txt.dvc" not in tracked and ".dvc/config" not in tracked
    assert ".dvc/.gitignore" in tracked and (r.root / ".dvc/.gitignore").is_file()
    assert "data.txt.trail" in tracked
    r.write(".dvc/config.local", "[core]\n    secret = yes\n")
    r.git("add", "-A")
    assert not any(
        f.startswith(".dvc/") and f != ".dvc/.gitignore" for f in r.git("ls-files").stdout.split()
    )  # DVC's cache and local config stay ignored


def test_runs_interrupted_mid_import_are_redone_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = small_repo(tmp_path / "repo", tool_env(tmp_path / "home"))
    r.write("params.yaml", "n: 3\n")
    cmd = "python -c \"open('out.txt', 'w').write('made')\""
    r.write("dvc.yaml", f"stages:\n  make:\n    cmd: {cmd}\n    params: [n]\n    outs: [out.txt]\n")
    r.dvc("repro", "-q")
    r.commit("a run")
    for key, value in r.env.items():
        if key.startswith("MLTRAIL_"):
            monkeypatch.setenv(key, value)
    from mltrail.importers.dvc import import_dvc
    from mltrail.store.sql import SqlStore

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # as a kill -9 after the run was created

    with monkeypatch.context() as m:
        m.setattr(SqlStore, "write_batches", killed)
        with pytest.raises(KeyboardInterrupt):
            import_dvc(r.root)
    code, report = import_json(r)
    assert code == 0, report["skipped"]
    assert report["runs_imported"] == 1
    from mltrail.tracking.client import MltrailClient

    client = MltrailClient(f"sqlite:///{r.root / '.mltrail/mltrail.db'}", create=False)
    try:
        exp = client.get_experiment_by_name("repo")
        [run] = client.search_runs([exp.experiment_id])
        assert run.info.status == "FINISHED" and run.data.params["n"] == "3"
        head = r.git("rev-parse", "HEAD").stdout.strip()
        assert run.data.tags["mltrail.import.dvc"] == f"{head}:make"
    finally:
        client.close()
    code, report = import_json(r)
    assert (report["runs_imported"], report["runs_existing"]) == (0, 1)


@pytest.mark.parametrize(
    ("text", "what", "reason"),
    [
        ("- cmd: echo\n", "dvc.yaml", "a list, not a mapping"),
        ("stages:\n  - cmd: echo\n", "dvc.yaml stages", "`stages:` is a list, not a mapping"),
        ("artifacts:\n  - model.bin\n", "dvc.yaml artifacts", "`artifacts:` is a list"),
    ],
)
def test_dvc_yaml_of_another_shape_is_skipped(
    tmp_path: Path, text: str, what: str, reason: str
) -> None:
    r = small_repo(tmp_path / "repo", tool_env(tmp_path / "home"))
    r.write("dvc.yaml", text)
    r.commit("an odd dvc.yaml")
    code, report = import_json(r)
    assert code == 1
    [skipped] = report["skipped"]
    assert skipped["what"] == what and reason in skipped["reason"], skipped
    assert (r.root / "data.txt.trail").is_file()  # the rest came across


def test_non_ascii_paths_keep_their_history(tmp_path: Path) -> None:
    r = small_repo(tmp_path / "repo", tool_env(tmp_path / "home"), {"données/é t.txt": "v1\n"})
    r.write("données/é t.txt", "v2\n")
    r.dvc("add", "-q", "données/é t.txt")
    r.commit("v2")
    code, report = import_json(r)
    assert code == 0, report["skipped"]
    assert report["history_versions"] == 2
    done = r.mltrail("data", "log", "--json", "données/é t.txt")
    assert done.returncode == 0, done.stderr
    subjects = [c["subject"] for v in json.loads(done.stdout)["versions"] for c in v["commits"]]
    assert subjects == ["v2", "data"]
    import mltrail.data as data

    first = r.git("rev-list", "--max-parents=0", "HEAD").stdout.strip()
    with data.open(r.root / "données/é t.txt", rev=first, mode="r", start=r.root) as f:
        assert f.read() == "v1\n"
