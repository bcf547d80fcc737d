"""Pipelines: ``mltrail repro`` vs ``dvc repro`` on the same pipelines, through each tool's CLI.

Run by ``bash benchmarks/run.sh --only pipeline`` (see README.md). Two pipelines, each generated
once as a stage list and written as ``mltrail.yaml`` and as ``dvc.yaml`` (same keys: cmd, deps,
params, outs), with the same input bytes and the same commands:

- ``chain``: 50 stages in a chain; stage N reads stage N-1's out and its own small input file,
  writes one small out file (a shell one-liner).
- ``files``: 4 stages each writing a folder of 5,000 small files (``python gen.py``), then a
  ``summary`` stage reading the 4 folders: 20,000 out files in all.

Each tool gets its own fresh Git repository under ``benchmarks/.work/pipeline/``. Timed, as
wall-clock time of the CLI subprocess (interpreter start included, as a user waits for it): the
first ``repro`` (every stage runs), the no-op ``repro`` (one warm-up, then the median of N), and a
``repro`` after one stage's input changed (a new change before each rep, median of N). The tools
take turns, DVC first. Every command appends its stage's name to a counter file
(``$BENCH_COUNTER``, outside the repository), so each figure is checked: the first repro ran every
stage once, a no-op ran nothing, a change re-ran exactly the expected stages. A figure that fails
its check is not reported.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "pipeline"
BIN = Path(sys.executable).parent
TOOLS = ("dvc", "mltrail")

FULL = {"stages": 50, "files": 20_000, "parts": 4, "noop_reps": 5, "change_reps": 3}
QUICK = {"stages": 10, "files": 2_000, "parts": 4, "noop_reps": 2, "change_reps": 1}
#: DVC's time / mltrail's time on the no-op repros.
TARGET_RATIO = 5.0

GEN_PY = '''\
"""Write N small files under OUT (in 50 subfolders), their content derived from SEED_FILE."""
import os
import sys

out, n, seed_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(seed_file) as f:
    seed = f.read().strip()
for d in range(50):
    os.makedirs(os.path.join(out, f"d{d:02d}"), exist_ok=True)
for i in range(n):
    with open(os.path.join(out, f"d{i % 50:02d}", f"f{i:05d}.txt"), "w") as f:
        f.write(f"{seed} {out} {i}\\n" * 4)
'''


class ToolFailed(RuntimeError):
    """A tool's command failed or did something else than expected; the figure is dropped."""


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# the pipelines
# --------------------------------------------------------------------------------------------
def chain_pipeline(n: int) -> dict:
    """A chain of ``n`` one-line stages; each reads the previous out and its own input file."""
    stages: dict[str, dict] = {}
    files = {"params.yaml": "seed: 1\n"}
    for i in range(n):
        name = f"s{i:02d}"
        files[f"in/{name}.txt"] = f"input of {name}\n"
        prev = [f"out/s{i - 1:02d}.txt"] if i else []
        reads = " ".join([*prev, f"in/{name}.txt"])
        stages[name] = {
            # DVC removes outs before a run but does not create their folder: mkdir -p.
            "cmd": f"mkdir -p out && cat {reads} > out/{name}.txt"
            f' && echo {name} >> "$BENCH_COUNTER"',
            "deps": [*prev, f"in/{name}.txt"],
            "params": ["seed"],
            "outs": [f"out/{name}.txt"],
        }
    last = f"s{n - 1:02d}"
    return {
        "key": "chain",
        "title": f"{n}-stage chain",
        "stages": stages,
        "files": files,
        # Change the last stage's own input: exactly that stage runs again.
        "change": f"in/{last}.txt",
        "rerun": [last],
    }


def files_pipeline(total: int, parts: int) -> dict:
    """``parts`` stages writing ``total`` small files in all, and one stage reading them all."""
    per = total // parts
    stages: dict[str, dict] = {}
    files = {"params.yaml": "seed: 1\n", "gen.py": GEN_PY}
    for p in range(parts):
        name = f"part{p}"
        files[f"in/{name}.txt"] = f"seed of {name}\n"
        stages[name] = {
            "cmd": f"python gen.py out/{name} {per} in/{name}.txt"
            f' && echo {name} >> "$BENCH_COUNTER"',
            "deps": ["gen.py", f"in/{name}.txt"],
            "params": ["seed"],
            "outs": [f"out/{name}"],
        }
    folders = [f"out/part{p}" for p in range(parts)]
    stages["summary"] = {
        "cmd": f"find {' '.join(folders)} -type f | wc -l > summary.txt"
        ' && echo summary >> "$BENCH_COUNTER"',
        "deps": folders,
        "outs": ["summary.txt"],
    }
    return {
        "key": "files",
        "title": f"{per * parts:,} out files in {parts} stages + 1",
        "stages": stages,
        "files": files,
        # Change one writer's seed: it rewrites its 1/parts of the files, and summary reads them.
        "change": "in/part1.txt",
        "rerun": ["part1", "summary"],
        "nfiles": per * parts,
    }


# --------------------------------------------------------------------------------------------
# one tool's repository
# --------------------------------------------------------------------------------------------
def base_env() -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE goes too: pip byte-compiled DVC at install, while mltrail is installed
    # editable, so without .pyc files every mltrail call would compile its sources again (~45 ms).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLTRAIL_", "MLFLOW_", "DVC_", "GIT_"))
        and k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


class Repo:
    """One tool's Git repository holding one pipeline."""

    def __init__(self, tool: str, root: Path, pipe: dict) -> None:
        self.tool, self.root, self.pipe = tool, root, pipe
        self.counter = root.parent / f"{root.name}.counter"
        self.env = base_env()
        self.env["BENCH_COUNTER"] = str(self.counter)
        if tool == "dvc":
            self.env["DVC_NO_ANALYTICS"] = "1"
            # DVC's hash state lives in a "site cache" (/var/tmp/dvc by default): one per repo.
            self.env["DVC_SITE_CACHE_DIR"] = str(root.parent / f"{root.name}-dvc-site-cache")
        self.changes = 0

    def git(self, *args: str) -> None:
        subprocess.run(["git", "-C", str(self.root), *args], check=True, capture_output=True)

    def init(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
        shutil.rmtree(self.env.get("DVC_SITE_CACHE_DIR", "/nonexistent"), ignore_errors=True)
        self.root.mkdir(parents=True)
        self.git("init", "-q")
        self.git("config", "user.name", "bench")
        self.git("config", "user.email", "bench@example.invalid")
        if self.tool == "dvc":
            self.cmd("init", "-q")
            self.cmd("config", "core.analytics", "false")
        else:
            self.cmd("init")
        for rel, text in self.pipe["files"].items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        spec = {"stages": self.pipe["stages"]}
        name = "dvc.yaml" if self.tool == "dvc" else "mltrail.yaml"
        (self.root / name).write_text(yaml.safe_dump(spec, sort_keys=False, width=200))
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "pipeline")
        self.counter.write_text("")

    def cmd(self, *args: str) -> dict:
        """Run the tool's CLI in the repository; return wall time and output."""
        os.sync()  # the previous command's dirty pages are not written back on this one's time
        t0 = time.perf_counter()
        proc = subprocess.run(
            [str(BIN / self.tool), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines() or ["(no output)"]
            raise ToolFailed(f"`{self.tool} {' '.join(args)}` exited {proc.returncode}: {tail[-1]}")
        return {"s": elapsed, "stdout": proc.stdout[-2000:]}

    def executed(self) -> list[str]:
        """Return the stages run since the last call (and clear the counter)."""
        names = self.counter.read_text().split()
        self.counter.write_text("")
        return names

    def repro(self, expect: list[str], what: str) -> float:
        """Time one ``repro``; check that exactly the ``expect`` stages ran."""
        r = self.cmd("repro")
        ran = self.executed()
        if sorted(ran) != sorted(expect):
            shown = ", ".join(ran[:8]) + (" …" if len(ran) > 8 else "") or "nothing"
            raise ToolFailed(
                f"{self.tool} {what}: expected {len(expect)} stage(s) to run, {shown} ran"
            )
        return r["s"]

    def change(self) -> None:
        """Give the pipeline's chosen input a new content (a new one each call)."""
        self.changes += 1
        with open(self.root / self.pipe["change"], "a") as f:
            f.write(f"change {self.changes}\n")

    def check_outs(self) -> None:
        """Every out exists (the files pipeline: with its files)."""
        for stage in self.pipe["stages"].values():
            for out in stage["outs"]:
                if not (self.root / out).exists():
                    raise ToolFailed(f"{self.tool}: out {out} is missing after repro")
        if "nfiles" in self.pipe:
            count = int((self.root / "summary.txt").read_text().split()[0])
            if count != self.pipe["nfiles"]:
                raise ToolFailed(f"{self.tool}: summary counted {count} files")


# --------------------------------------------------------------------------------------------
# the measurements
# --------------------------------------------------------------------------------------------
def bench_pipeline(pipe: dict, cfg: dict, root: Path) -> dict:
    """All operations on one pipeline, both tools; return ``{op: {tool: {s | error}}}``."""
    res: dict = {"title": pipe["title"], "stages": len(pipe["stages"]), "ops": {}}
    ops = res["ops"]
    every = list(pipe["stages"])

    def record(op: str, tool: str, fn) -> None:
        try:
            ops.setdefault(op, {})[tool] = fn()
        except (ToolFailed, subprocess.SubprocessError, OSError) as exc:
            ops.setdefault(op, {})[tool] = {"error": str(exc)}
            progress(f"  FAILED: {exc}")

    repos = {tool: Repo(tool, root / f"{pipe['key']}-{tool}", pipe) for tool in TOOLS}
    for tool, repo in repos.items():
        progress(f"{pipe['key']}: {tool}: first repro ({len(every)} stages)")
        repo.init()

        def first(repo: Repo = repo) -> dict:
            s = repo.repro(every, "first repro")
            repo.check_outs()
            return {"s": s}

        record("first", tool, first)
    reps = {"noop": [], "change": []}
    for tool, repo in repos.items():
        if "error" in ops["first"][tool]:
            continue

        def noop(repo: Repo = repo, tool: str = tool) -> dict:
            progress(f"{pipe['key']}: {tool}: no-op repro, warm-up + {cfg['noop_reps']}")
            repo.repro([], "no-op repro (warm-up)")
            times = [repo.repro([], "no-op repro") for _ in range(cfg["noop_reps"])]
            reps["noop"].append(times)
            return {"s": statistics.median(times), "reps": times}

        def change(repo: Repo = repo, tool: str = tool) -> dict:
            progress(f"{pipe['key']}: {tool}: repro after a change, {cfg['change_reps']} rep(s)")
            times = []
            for _ in range(cfg["change_reps"]):
                repo.change()
                times.append(repo.repro(pipe["rerun"], f"repro after changing {pipe['change']}"))
            repo.check_outs()
            return {"s": statistics.median(times), "reps": times}

        record("noop", tool, noop)
        record("change", tool, change)
    return res


def ratio(res: dict, op: str) -> float | None:
    d = res["ops"].get(op, {})
    a, b = d.get("dvc", {}).get("s"), d.get("mltrail", {}).get("s")
    return a / b if a and b else None


def fmt_s(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v * 1e3:.0f} ms" if v < 1 else f"{v:.2f} s"


def table(results: list[dict], cfg: dict) -> tuple[str, list[dict]]:
    """The 80-column table, and the targets' verdicts."""
    w = [36, 10, 10, 9, 15]
    title = "Pipelines: mltrail repro vs dvc repro (wall clock of the CLI)"
    out = ["", title, "=" * len(title)]
    head = ("pipeline / repro", "DVC", "mltrail", "DVC/mt", "goal")
    out.append(
        f"{head[0]:<{w[0]}}{head[1]:>{w[1]}}{head[2]:>{w[2]}}{head[3]:>{w[3]}}{head[4]:>{w[4]}}"
    )
    out.append("-" * sum(w))
    verdicts = []
    labels = {
        "first": "first (every stage runs)",
        "noop": f"no-op (median of {cfg['noop_reps']})",
        "change": "one input changed"
        + (f" (median of {cfg['change_reps']})" if cfg["change_reps"] > 1 else ""),
    }
    for res in results:
        out.append(res["title"])
        for op in ("first", "noop", "change"):
            cells = []
            for tool in TOOLS:
                entry = res["ops"].get(op, {}).get(tool, {})
                cells.append("FAIL" if "error" in entry else fmt_s(entry.get("s")))
            r = ratio(res, op)
            goal = ""
            if op == "noop":
                status = "n/a" if r is None else ("PASS" if r >= TARGET_RATIO else "MISS")
                goal = f">={TARGET_RATIO:.0f}x {status}"
                verdicts.append(
                    {"target": f"{res['title']}: no-op", "ratio": r, "goal": TARGET_RATIO,
                     "status": status}
                )  # fmt: skip
            rs = "n/a" if r is None else f"{r:.1f}x"
            out.append(
                f"  {labels[op]:<{w[0] - 2}}{cells[0]:>{w[1]}}{cells[1]:>{w[2]}}{rs:>{w[3]}}"
                f"{goal:>{w[4]}}".rstrip()
            )
    notes = [
        "DVC/mt: DVC's time / mltrail's time. Each tool in its own fresh Git repo, same "
        "pipeline, same files and commands; wall clock of the CLI subprocess, interpreter "
        "start included; every figure checked with a counter of executed stages.",
        "One input changed: the last stage's own input (chain) or one writer's seed (files: "
        "that writer and summary re-run).",
    ]
    for n in notes:
        out += textwrap.wrap(n, 78, subsequent_indent="  ")
    for res in results:
        for op, by_tool in res["ops"].items():
            for tool, entry in by_tool.items():
                if "error" in entry:
                    out += textwrap.wrap(f"FAIL {res['title']} {op} {tool}: {entry['error']}", 78)
    return "\n".join(out), verdicts


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for tool in TOOLS:
        proc = subprocess.run([str(BIN / tool), "--version"], capture_output=True, text=True)
        out[tool] = (proc.stdout.strip() or proc.stderr.strip()).split()[-1] if proc.stdout else "?"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1",
                    help="10 stages, 2,000 files, fewer reps (env BENCH_QUICK=1)")  # fmt: skip
    ap.add_argument("--only", default="chain,files", help="chain,files")
    ap.add_argument("--json", metavar="PATH", help="raw figures (.work/pipeline-results.json)")
    ap.add_argument("--keep", action="store_true", help="keep the repositories in .work/pipeline")
    opts = ap.parse_args(argv)
    cfg = dict(QUICK if opts.quick else FULL)
    only = [s.strip() for s in opts.only.split(",") if s.strip()]
    if bad := set(only) - {"chain", "files"}:
        ap.error(f"unknown: {', '.join(sorted(bad))}")
    json_path = Path(opts.json or HERE / ".work" / f"pipeline-results{'-quick' * opts.quick}.json")
    ver = versions()
    date = dt.datetime.now().isoformat(timespec="seconds")
    mode = "QUICK smoke mode: figures not meaningful" if opts.quick else "full mode"
    print(f"mltrail {ver['mltrail']} vs DVC {ver['dvc']} | Python {ver['python']} | "
          f"{os.cpu_count()} cores\n{date} | {mode}", flush=True)  # fmt: skip
    pipes = {"chain": lambda: chain_pipeline(cfg["stages"]),
             "files": lambda: files_pipeline(cfg["files"], cfg["parts"])}  # fmt: skip
    started = time.time()
    results = []
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    try:
        for key in only:
            results.append(bench_pipeline(pipes[key](), cfg, WORK))
    finally:
        if not opts.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    text, verdicts = table(results, cfg)
    print(text, flush=True)
    elapsed = time.time() - started
    res = {"date": date, "mode": "quick" if opts.quick else "full", "config": cfg,
           "versions": ver, "targets": verdicts, "pipelines": results, "elapsed_s": elapsed,
           "machine": {"nproc": os.cpu_count(), "platform": platform.platform()}}  # fmt: skip
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(res, indent=2) + "\n")
    progress(f"raw figures in {json_path}")
    print(f"\nelapsed {elapsed:.0f} s")
    failed = any("error" in e for r in results for d in r["ops"].values() for e in d.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
