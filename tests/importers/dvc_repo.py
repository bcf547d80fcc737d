"""Building DVC repositories for the import tests with the real ``dvc`` and ``git`` commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

#: The dvc command of the test environment (installed with the `test` extra).
DVC = [sys.executable, "-m", "dvc"]


def tool_env(home: Path) -> dict[str, str]:
    """An environment for git, dvc and mltrail that reads nothing of the user's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GIT_", "DVC_", "MLTRAIL_", "AWS_", "XDG_"))
    }
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local/share"),
        DVC_NO_ANALYTICS="1",
        DVC_SITE_CACHE_DIR=str(home / "dvc-site"),
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.com",
        GIT_CONFIG_NOSYSTEM="1",
        MLTRAIL_CAPTURE="0",
        # `python` in the stages' commands is this environment's (it has PyYAML).
        PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
    )
    return env


class Repo:
    """A Git + DVC repository in a folder, driven through the real commands."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command in the repository; fail the test with its output if it fails."""
        done = subprocess.run(
            list(args), cwd=self.root, env=self.env, capture_output=True, text=True, timeout=300
        )
        if check and done.returncode != 0:
            pytest.fail(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def dvc(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run dvc."""
        return self.run(*DVC, *args)

    def gto(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run GTO (installed with dvc): its registry lives in Git tags."""
        return self.run(str(Path(sys.executable).parent / "gto"), *args)

    def git(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run git."""
        return self.run("git", *args)

    def mltrail(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run the mltrail CLI of this checkout."""
        return self.run(sys.executable, "-m", "mltrail", *args, check=check)

    def write(self, rel: str, text: str) -> None:
        """Write a file (creating its folder)."""
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    def commit(self, message: str, *paths: str) -> None:
        """Stage everything not ignored and commit."""
        self.git("add", "-A", *paths)
        self.git("commit", "-q", "-m", message)

    def copy(self, dest: Path) -> Repo:
        """Return a full copy of the repository (cache, remote folders beside it not included)."""
        shutil.copytree(self.root, dest, symlinks=True)
        return Repo(dest, self.env)


PREPARE = """\
import os, sys, yaml
split = yaml.safe_load(open("params.yaml"))["prepare"]["split"]
os.makedirs("out/prepared", exist_ok=True)
rows = open("data/raw.csv").read().splitlines()
cut = int(len(rows) * split)
open("out/prepared/train.csv", "w").write("\\n".join(rows[cut:]) + "\\n")
open("out/prepared/test.csv", "w").write("\\n".join(rows[:cut]) + "\\n")
"""
TRAIN = """\
import json, os, yaml
p = yaml.safe_load(open("params.yaml"))["train"]
seed = json.load(open("extra.json"))["seed"]
n = len(open("out/prepared/train.csv").read().splitlines())
os.makedirs("out", exist_ok=True)
open("out/model.bin", "w").write(f"model {n} {p['epochs']} {p['lr']} {seed}")
json.dump({"acc": 0.5 + p["epochs"] / 100, "loss": {"val": 0.25}}, open("out/metrics.json", "w"))
open("out/log.txt", "a").write(f"trained {p['epochs']}\\n")
"""
DVC_YAML = """\
vars:
  - langs: [en, fr]
stages:
  prepare:
    cmd: python src/prepare.py
    deps: [src/prepare.py, data/raw.csv]
    params: [prepare.split]
    outs: [out/prepared]
  train:
    cmd: python src/train.py
    deps: [src/train.py, out/prepared]
    params:
      - train
      - extra.json:
          - seed
    outs:
      - out/model.bin
      - out/log.txt:
          cache: false
          persist: true
    metrics:
      - out/metrics.json:
          cache: false
  greet:
    foreach: ${langs}
    do:
      cmd: python -c "open('greet-${item}.txt', 'w').write('${item}')"
      wdir: gen
      outs:
        - greet-${item}.txt
artifacts:
  model:
    path: out/model.bin
    type: model
"""


def build_repo(root: Path, env: dict[str, str]) -> Repo:
    """A repository with a file, a folder, a pipeline, three tagged versions and a local remote.

    History: v1.0 (raw.csv v1, images 3 files), v2.0 (raw.csv v2, pipeline run; GTO model@v1.0.0),
    v3.0 (raw.csv v3, a 4th image, pipeline run again; model@v1.1.0, assigned to prod), then a DVC
    experiment ``ep7`` (train.epochs=7) on top. The local remote ``../remote`` and the cache have
    every version.
    """
    root.mkdir(parents=True)
    r = Repo(root, env)
    r.git("init", "-q", "-b", "main")
    r.dvc("init", "-q")
    r.dvc("remote", "add", "-d", "store", "../remote")
    r.write("data/raw.csv", "id,x\n1,a\n2,b\n3,c\n")
    for i in range(3):
        r.write(f"data/images/img{i}.bin", f"image {i}\n")
    r.dvc("add", "-q", "data/raw.csv", "data/images")
    r.commit("v1: the data")
    r.git("tag", "v1.0")
    r.write("src/prepare.py", PREPARE)
    r.write("src/train.py", TRAIN)
    r.write("params.yaml", "prepare:\n  split: 0.5\ntrain:\n  epochs: 3\n  lr: 0.1\n")
    r.write("extra.json", '{"seed": 7, "unused": 1}\n')
    r.write("dvc.yaml", DVC_YAML)
    (root / "gen").mkdir()
    r.write("gen/.keep", "")
    r.write("data/raw.csv", "id,x\n1,a\n2,b\n3,c\n4,d\n")
    r.dvc("add", "-q", "data/raw.csv")
    r.dvc("repro", "-q")
    r.commit("v2: pipeline")
    r.git("tag", "v2.0")
    r.gto("register", "model", "--version", "v1.0.0")
    r.write("data/raw.csv", "id,x\n1,a\n2,b\n3,c\n4,d\n5,e\n6,f\n")
    r.write("data/images/img3.bin", "image 3\n")
    r.dvc("add", "-q", "data/raw.csv", "data/images")
    r.write("params.yaml", "prepare:\n  split: 0.5\ntrain:\n  epochs: 5\n  lr: 0.1\n")
    r.dvc("repro", "-q")
    r.commit("v3: more data, 5 epochs")
    r.git("tag", "v3.0")
    r.gto("register", "model", "--version", "v1.1.0")
    r.gto("assign", "model", "--version", "v1.1.0", "--stage", "prod")
    # An experiment (refs/exps), run in a temporary copy: the workspace stays at v3.0.
    r.dvc("exp", "run", "-q", "--temp", "-S", "train.epochs=7", "-n", "ep7")
    r.dvc("push", "-q", "--all-commits")
    return r


def cache_file(root: Path, md5: str) -> Path:
    """The DVC 3 cache path of an object."""
    return root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def small_repo(root: Path, env: dict[str, str], files: dict[str, str] | None = None) -> Repo:
    """A Git + DVC repository with ``files`` (default: one ``data.txt``) `dvc add`-ed, committed."""
    root.mkdir(parents=True)
    r = Repo(root, env)
    r.git("init", "-q", "-b", "main")
    r.dvc("init", "-q")
    files = files or {"data.txt": "some data\n"}
    for rel, text in files.items():
        r.write(rel, text)
    r.dvc("add", "-q", *files)
    r.commit("data")
    return r
