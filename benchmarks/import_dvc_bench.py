"""Moving in from DVC: ``mltrail import dvc`` of a repository of 20,000 files, through the CLI.

Run by ``bash benchmarks/run.sh --only import`` (see README.md), or on its own with the python of
a venv that has ``dvc`` (3.67.1) and mltrail. The source is built with the real ``dvc``: a folder
of 20,000 files of 1-8 KiB (``data/files``, one ``dvc add``, ~80 MB) and a single file, in a Git
repository with one commit. Timed, wall clock of each CLI process:

- ``mltrail import dvc`` (the move: every object read from DVC's cache, checked against its MD5,
  stored under BLAKE3; pointers, history table), then a rerun (nothing changed);
- side by side, the same data brought back into an emptied workspace by ``dvc checkout`` and by
  ``mltrail data checkout`` (both from their local cache), and ``dvc status`` against
  ``mltrail data status`` on the unchanged workspace.

Every figure is checked: the import must list nothing as left out, store every file, and the
checkouts must restore every file (a wrong result is not reported).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "import-dvc"
PY = sys.executable
FULL = {"files": 20_000}
QUICK = {"files": 2_000}


def progress(msg: str) -> None:
    print(f"[import-dvc] {msg}", file=sys.stderr, flush=True)


def env(home: Path) -> dict[str, str]:
    found = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLTRAIL_", "GIT_"))}
    home.mkdir(parents=True, exist_ok=True)
    found.update(
        HOME=str(home),
        DVC_NO_ANALYTICS="1",
        DVC_SITE_CACHE_DIR=str(home / "dvc-site"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.com",
        MLTRAIL_CAPTURE="0",
        NO_COLOR="1",
    )
    return found


def run(cmd: list[str], cwd: Path, environ: dict[str, str]) -> tuple[float, str]:
    """Run a command; return its wall time and stdout; stop the benchmark if it fails."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=environ, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, done.stdout


def make_source(root: Path, files: int, environ: dict[str, str]) -> dict:
    """A Git + DVC repository with ``files`` small files in one tracked folder, and one file."""
    shutil.rmtree(root, ignore_errors=True)
    folder = root / "data" / "files"
    folder.mkdir(parents=True)
    rng = random.Random(15)
    total = 0
    for i in range(files):
        sub = folder / f"d{i % 100:02d}"
        sub.mkdir(exist_ok=True)
        data = rng.randbytes(rng.randint(1024, 8192))
        (sub / f"f{i:05d}.bin").write_bytes(data)
        total += len(data)
    (root / "data" / "table.csv").write_text(
        "id,x\n" + "".join(f"{i},{i * i}\n" for i in range(1000))
    )
    run(["git", "init", "-q"], root, environ)
    run([PY, "-m", "dvc", "init", "-q"], root, environ)
    add_s, _ = run([PY, "-m", "dvc", "add", "-q", "data/files", "data/table.csv"], root, environ)
    run(["git", "add", "-A"], root, environ)
    run(["git", "commit", "-q", "-m", "data"], root, environ)
    return {"root": root, "bytes": total, "dvc_add_s": add_s}


def bench(cfg: dict) -> dict:
    environ = env(WORK / "home")
    progress(f"building the DVC repository ({cfg['files']:,} files, with dvc add)")
    src = make_source(WORK / "repo", cfg["files"], environ)
    root = src["root"]
    mltrail = [PY, "-m", "mltrail"]
    progress("mltrail import dvc (first, then a rerun)")
    first_s, out = run([*mltrail, "import", "dvc", "--json"], root, environ)
    report = json.loads(out)
    assert report["skipped"] == [], report["skipped"]
    assert report["objects_stored"] >= cfg["files"], report["objects_stored"]
    rerun_s, out = run([*mltrail, "import", "dvc", "--json"], root, environ)
    assert json.loads(out)["changed"] == []
    progress("status on the unchanged workspace: dvc status, mltrail data status")
    dvc_status_s, _ = run([PY, "-m", "dvc", "status", "-q"], root, environ)
    ml_status_s, _ = run([*mltrail, "data", "status"], root, environ)
    progress("checkout into an emptied workspace: dvc checkout, mltrail data checkout")
    folder = root / "data" / "files"
    shutil.rmtree(folder)
    dvc_co_s, _ = run([PY, "-m", "dvc", "checkout", "-q", "data/files.dvc"], root, environ)
    assert sum(1 for _ in folder.rglob("*.bin")) == cfg["files"]
    shutil.rmtree(folder)
    ml_co_s, _ = run([*mltrail, "data", "checkout", "data/files"], root, environ)
    assert sum(1 for _ in folder.rglob("*.bin")) == cfg["files"]
    return {
        "files": cfg["files"],
        "bytes": src["bytes"],
        "dvc_add_s": src["dvc_add_s"],
        "import_s": first_s,
        "rerun_s": rerun_s,
        "dvc_status_s": dvc_status_s,
        "mltrail_status_s": ml_status_s,
        "dvc_checkout_s": dvc_co_s,
        "mltrail_checkout_s": ml_co_s,
    }


def table(r: dict) -> str:
    mb = r["bytes"] / 1e6
    rows = [
        ("mltrail import dvc (first)", r["import_s"]),
        ("mltrail import dvc (rerun, nothing new)", r["rerun_s"]),
        ("dvc add of the same data (setup)", r["dvc_add_s"]),
        ("dvc status", r["dvc_status_s"]),
        ("mltrail data status", r["mltrail_status_s"]),
        ("dvc checkout (emptied folder)", r["dvc_checkout_s"]),
        ("mltrail data checkout (emptied folder)", r["mltrail_checkout_s"]),
    ]
    lines = [
        f"mltrail import dvc, {r['files']:,} files in one folder ({mb:.0f} MB)",
        f"{'':44}{'time':>9}{'files/s':>12}{'MB/s':>10}",
    ]
    for name, s in rows:
        lines.append(f"{name:44}{s:>8.1f}s{r['files'] / s:>12,.0f}{mb / s:>10.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 files (a smoke run)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    WORK.mkdir(parents=True, exist_ok=True)
    try:
        res = bench(cfg)
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    print(table(res))
    if args.json:
        meta = {
            "date": dt.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "config": cfg,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**meta, "results": res}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
