"""Data versioning: mltrail vs DVC 3.x, side by side in one run, through each tool's CLI.

Started by ``bench.py`` (``bash benchmarks/run.sh --only data``; see README.md). For each dataset
(one large file, a tree of small files, and in ``--large`` mode a tree of 100,000 small files) both
tools get a fresh Git repository of their own under ``benchmarks/.work/``, with a copy of the same
bytes, and the same operations are timed one after the other, DVC first, as wall-clock time of the
CLI subprocess (interpreter startup included: that is what a user waits for).

Every figure is checked: a status must report what really happened (unchanged or modified), and
after pull and checkout every byte of the workspace is compared (BLAKE3 of each file, outside the
timed region) with the generated originals. A figure that fails its check is not reported.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from blake3 import blake3  # a dependency of mltrail; only used to verify bytes, never timed

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
BIN = Path(sys.executable).parent
SEED = 20261123
FILE_SIZE = 4096  # bytes per file in the small-file trees
DIRS = 100  # subfolders of the small-file trees
MIB = 1024 * 1024
#: --keep: leave the projects, remotes and clones under benchmarks/.work for inspection.
KEEP = False

FULL = {
    "big_mib": 1024,
    "small_files": 20_000,
    "large_files": 100_000,
    "op_reps": 3,  # add, rehash, push, pull, checkout: median of this many (100k tree: 1)
    "status_reps": 5,  # unchanged status: median of this many calls
    "change_reps": 3,  # status after a change: a new change before each call, median
    "raw_reps": 3,  # cat / md5sum / b3sum: median after one warm-up
}
QUICK = {
    "big_mib": 64,
    "small_files": 2_000,
    "large_files": 5_000,
    "op_reps": 1,
    "status_reps": 2,
    "change_reps": 1,
    "raw_reps": 1,
}
TARGETS = {
    "ratio": 3.0,  # DVC's time / mltrail's time, every operation
    "ratio_many_files": 10.0,  # the same on the small-file trees
    "hash_vs_read": 0.80,  # mltrail add's speed on the big file / `cat`'s read speed
    "status_large_s": 1.0,  # unchanged status of the 100,000-file tree
}
#: The operations that have targets, in table order: (key, label).
OPS = [
    ("add", "add (first time)"),
    ("status", "status, unchanged"),
    ("status_changed", "status, one file changed"),
    ("push", "push to a local-folder remote"),
    ("pull", "pull into a fresh git clone"),
    ("checkout", "checkout after rm (defaults)"),
]
#: Informative rows, no target.
EXTRA = [
    ("rehash", "status, hash caches deleted"),
    ("push_sync", "push, then sync (durable)"),
    ("checkout_copy", "checkout after rm, both copy"),
]
TOOLS = ("dvc", "mltrail")


class DataBenchError(RuntimeError):
    """The harness itself failed (not one tool's command)."""


class ToolFailed(RuntimeError):
    """A tool's command failed or gave a wrong result; the figure is not counted."""


class NotAvailable(RuntimeError):
    """The tool has no such command (yet); the figure is n/a."""


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def config(quick: bool, large: bool) -> dict:
    cfg = dict(QUICK if quick else FULL)
    cfg["large"] = large
    return cfg


# --------------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------------
def datasets(cfg: dict) -> list[dict]:
    mib = cfg["big_mib"]
    size = f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"
    out = [
        {"key": "big_file", "kind": "file", "target": "big.bin", "mib": mib, "short": size,
         "title": f"one {size} file", "goal": TARGETS["ratio"]},
        _tree("small_files", cfg["small_files"]),
    ]  # fmt: skip
    if cfg["large"]:
        # One run per operation: each takes tens of seconds per tool here.
        out.append(dict(_tree("large_tree", cfg["large_files"]), reps=1))
    return out


def _tree(key: str, n: int) -> dict:
    short = f"{n // 1000}k files" if n % 1000 == 0 else f"{n:,} files"
    return {
        "key": key,
        "kind": "dir",
        "target": "data",
        "nfiles": n,
        "short": short,
        "title": f"{n:,} files of 4 KiB in {DIRS} folders",
        "goal": TARGETS["ratio_many_files"],
    }


def tree_files(n: int) -> list[str]:
    per = -(-n // DIRS)
    return [f"data/d{i // per:03d}/f{i % per:04d}.bin" for i in range(n)]


def generate(ds: dict, root: Path) -> dict[str, str]:
    """Write the dataset under ``root`` (fixed seed); return ``{relative path: BLAKE3}``."""
    rng = random.Random(f"{SEED}-{ds['key']}")
    manifest: dict[str, str] = {}
    if ds["kind"] == "file":
        path = root / ds["target"]
        path.parent.mkdir(parents=True, exist_ok=True)
        h = blake3(max_threads=blake3.AUTO)
        with open(path, "wb") as f:
            for _ in range(ds["mib"] // 16 or 1):
                chunk = rng.randbytes(min(16, ds["mib"]) * MIB)
                f.write(chunk)
                h.update(chunk)
        manifest[ds["target"]] = h.hexdigest()
        return manifest
    for rel in tree_files(ds["nfiles"]):
        path = root / rel
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True)
        data = rng.randbytes(FILE_SIZE)
        path.write_bytes(data)
        manifest[rel] = blake3(data).hexdigest()
    return manifest


def verify(project: Path, target: str, manifest: dict[str, str]) -> str | None:
    """Compare every file under ``project/target`` with the manifest; None if identical."""
    top = project / target
    found: dict[str, str] = {}
    if top.is_file():
        found[target] = blake3(max_threads=blake3.AUTO).update_mmap(str(top)).hexdigest()
    elif top.is_dir():
        for folder, _, files in os.walk(top):
            for name in files:
                p = os.path.join(folder, name)
                rel = os.path.relpath(p, project)
                if os.path.getsize(p) >= 16 * MIB:
                    found[rel] = blake3(max_threads=blake3.AUTO).update_mmap(p).hexdigest()
                else:
                    with open(p, "rb") as f:
                        found[rel] = blake3(f.read()).hexdigest()
    if found == manifest:
        return None
    missing = sorted(manifest.keys() - found.keys())
    extra = sorted(found.keys() - manifest.keys())
    wrong = sorted(k for k in manifest.keys() & found.keys() if manifest[k] != found[k])
    parts = []
    for what, items in (("missing", missing), ("unexpected", extra), ("different", wrong)):
        if items:
            parts.append(f"{len(items)} {what} (e.g. {items[0]})")
    return "workspace differs from the originals: " + ", ".join(parts)


# --------------------------------------------------------------------------------------------
# running the tools
# --------------------------------------------------------------------------------------------
def settle() -> None:
    """Flush every filesystem before a timed command, untimed.

    The previous command's dirty pages (DVC never syncs; mltrail syncs its store but not the
    workspace) and the discards of deleted files (this disk is mounted with ``discard``) would
    otherwise be written back during the next command and counted against it.
    """
    os.sync()


def base_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLTRAIL_", "MLFLOW_", "DVC_", "GIT_")) and k != "PYTHONPATH"
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


class Project:
    """One tool's Git repository with the dataset in it."""

    def __init__(self, tool: str, root: Path, ds: dict) -> None:
        self.tool, self.root, self.ds = tool, root, ds
        self.target = ds["target"]
        self.env = base_env()
        if tool == "mltrail":
            self.env["MLTRAIL_CAPTURE"] = "0"
        else:
            self.env["DVC_NO_ANALYTICS"] = "1"
            # DVC keeps its hash state and indexes in a "site cache" folder (/var/tmp/dvc by
            # default); one per project keeps runs apart and lets `rehash` clear it.
            self.site_cache = root.parent / f"{root.name}-dvc-site-cache"
            self.env["DVC_SITE_CACHE_DIR"] = str(self.site_cache)

    def run(self, args: list[str], *, check: bool = True) -> dict:
        """Run a command in the project; return its wall time and output."""
        settle()
        t0 = time.perf_counter()
        proc = subprocess.run(
            args, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=3600
        )
        elapsed = time.perf_counter() - t0
        out = {"s": elapsed, "rc": proc.returncode, "stdout": proc.stdout[-600:]}
        if check and proc.returncode != 0:
            tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines() or ["(no output)"]
            raise ToolFailed(f"`{' '.join(args)}` exited {proc.returncode}: {tail[-1][:300]}")
        return out

    def cli(self, *args: str) -> list[str]:
        return [str(BIN / self.tool), *args]

    # -- the operations ------------------------------------------------------------------------
    def init(self, src: Path) -> None:
        self.root.mkdir(parents=True)
        git = ["git", "-C", str(self.root)]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "config", "user.name", "bench"], check=True)
        subprocess.run([*git, "config", "user.email", "bench@example.invalid"], check=True)
        if self.tool == "dvc":
            self.run(self.cli("init", "-q"))
            self.run(self.cli("config", "core.analytics", "false"))
        else:
            self.run(self.cli("init"))
        self.commit("init")
        # -a keeps the generated files' mtimes: the data was made earlier, as it usually is.
        src_path = src / self.target
        subprocess.run(
            ["cp", "-a", "--reflink=never", str(src_path), str(self.root / self.target)],
            check=True,
        )

    def reset(self, src: Path) -> None:
        """Start again from a fresh project with a fresh copy of the data."""
        shutil.rmtree(self.root)
        if self.tool == "dvc":
            shutil.rmtree(self.site_cache, ignore_errors=True)
        self.init(src)

    def pushed_count(self, stdout: str) -> int | None:
        """How many objects a push says it sent."""
        pattern = r"(\d+) files? pushed" if self.tool == "dvc" else r"Pushed (\d+) objects?"
        m = re.search(pattern, stdout)
        return int(m.group(1)) if m else None

    def commit(self, msg: str) -> None:
        subprocess.run(["git", "-C", str(self.root), "add", "-A"], check=True)
        subprocess.run(
            ["git", "-C", str(self.root), "commit", "-q", "--allow-empty", "-m", msg], check=True
        )

    def add(self) -> dict:
        if self.tool == "dvc":
            return self.run(self.cli("add", self.target))
        return self.run(self.cli("data", "add", self.target))

    def status(self) -> dict:
        # `dvc status` (pipelines and data, the classic command), not `dvc data status`.
        r = self.run(self.cli("status") if self.tool == "dvc" else self.cli("data", "status"))
        if self.tool == "dvc":
            r["clean"] = "Data and pipelines are up to date." in r["stdout"]
        else:
            r["clean"] = "Data is up to date" in r["stdout"]
        r["modified"] = "modified:" in r["stdout"]
        return r

    def forget_hashes(self) -> None:
        """Delete the tool's cache of file hashes, so the next command rehashes everything."""
        if self.tool == "dvc":
            shutil.rmtree(self.site_cache, ignore_errors=True)
        else:
            for suffix in ("", "-wal", "-shm"):
                (self.root / ".mltrail" / "cache" / f"stat.db{suffix}").unlink(missing_ok=True)

    def remote_add(self, url: Path) -> dict:
        if self.tool == "dvc":
            return self.run(self.cli("remote", "add", "-d", "local", str(url)))
        self.require("remote", "add")
        return self.run(self.cli("remote", "add", "local", str(url)))

    def push(self) -> dict:
        if self.tool == "dvc":
            return self.run(self.cli("push"))
        self.require("data", "push")
        return self.run(self.cli("data", "push"))

    def pull(self) -> dict:
        if self.tool == "dvc":
            return self.run(self.cli("pull"))
        self.require("data", "pull")
        return self.run(self.cli("data", "pull"))

    def checkout(self, copy: bool = False) -> dict:
        if self.tool == "dvc":
            # DVC's default cache.type is "reflink,copy": on a filesystem without reflinks, a copy.
            return self.run(self.cli("checkout"))
        extra = ["--link", "copy"] if copy else []
        return self.run(self.cli("data", "checkout", *extra))

    def require(self, *cmd: str) -> None:
        r = self.run(self.cli(*cmd, "--help"), check=False)
        if r["rc"] != 0:
            raise NotAvailable(f"`{self.tool} {' '.join(cmd)}` does not exist in this version")

    def clone(self, dest: Path) -> Project:
        subprocess.run(["git", "clone", "-q", str(self.root), str(dest)], check=True)
        return Project(self.tool, dest, self.ds)


# --------------------------------------------------------------------------------------------
# changes for "status after one file changed"
# --------------------------------------------------------------------------------------------
class Changer:
    """Rewrites one file (small trees) or one 1 MiB block (big file) in place, size unchanged,
    a different one each time; ``restore`` puts every original byte back."""

    def __init__(self, ds: dict) -> None:
        self.ds = ds
        self.rng = random.Random(f"{SEED}-change-{ds['key']}")
        self.saved: list[tuple[Path, int, bytes]] = []

    def change(self, project: Path, rep: int) -> str:
        if self.ds["kind"] == "file":
            path = project / self.ds["target"]
            blocks = self.ds["mib"]
            offset = ((rep * 7 + 3) * blocks // 11 % blocks) * MIB
            length = MIB
            what = f"1 MiB block at {offset // MIB} MiB of {self.ds['target']}"
        else:
            files = tree_files(self.ds["nfiles"])
            rel = files[(rep * 7919 + 4242) % len(files)]
            path, offset, length = project / rel, 0, FILE_SIZE
            what = rel
        with open(path, "r+b") as f:
            f.seek(offset)
            old = f.read(length)
            new = self.rng.randbytes(length)
            f.seek(offset)
            f.write(new)
        self.saved.append((path, offset, old))
        return what

    def restore(self) -> None:
        for path, offset, old in reversed(self.saved):
            with open(path, "r+b") as f:
                f.seek(offset)
                f.write(old)
        self.saved.clear()


# --------------------------------------------------------------------------------------------
# raw limits: reading and hashing the same bytes with standard tools
# --------------------------------------------------------------------------------------------
def raw_limits(ds: dict, src: Path, reps: int) -> dict:
    """Time standard tools on the same bytes: read, hash, and copy durably (median of ``reps``)."""
    target = src / ds["target"]
    copy_to = src.parent / "raw-copy"
    if ds["kind"] == "file":
        each = f"'{target}'"
        xargs = ""
    else:
        each = ""
        xargs = f"find '{target}' -type f -print0 | xargs -0 "
    # name: (label, command, command run after each timing, untimed)
    cmds: dict[str, tuple[str, str, str | None]] = {
        "cat": ("cat > /dev/null", f"{xargs}cat {each} > /dev/null", None),
    }
    if ds["kind"] == "file":
        cmds["dd_direct"] = (
            "dd iflag=direct (disk, no page cache)",
            f"dd if='{target}' of=/dev/null bs=16M iflag=direct status=none",
            None,
        )
    cmds["md5sum"] = ("md5sum (1 thread)", f"{xargs}md5sum {each} > /dev/null", None)
    if shutil.which("b3sum"):
        cmds["b3sum"] = (
            f"b3sum (BLAKE3, up to {os.cpu_count()} threads)",
            f"{xargs}b3sum {each} > /dev/null",
            None,
        )
    else:
        # Fallback: the Python blake3 package (Rust), multi-threaded, labelled as such.
        code = (
            "import sys, os; from blake3 import blake3\n"
            "t = sys.argv[1]\n"
            "fs = [os.path.join(d, f) for d, _, n in os.walk(t) for f in n] or [t]\n"
            "for f in fs: blake3(max_threads=blake3.AUTO).update_mmap(f)"
        )
        cmds["b3sum"] = ("python blake3 (no b3sum here)",
                         f"{sys.executable} -c \"{code}\" '{target}'", None)  # fmt: skip
    # Run once, no warm-up: removing a copied tree is slow on this disk (discard) and would
    # disturb what follows.
    cmds["copy_sync"] = (
        "cp -r + sync -f (durable copy), 1 run",
        f"cp -r --reflink=never '{target}' '{copy_to}' && sync -f '{copy_to}'",
        f"rm -rf '{copy_to}'",
    )
    out: dict = {}
    for name, (label, cmd, after) in cmds.items():
        times = []
        warmup = 0 if after else 1
        for rep in range(warmup + (1 if after else reps)):
            settle()
            t0 = time.perf_counter()
            subprocess.run(["bash", "-c", cmd], check=True)
            if rep >= warmup:
                times.append(time.perf_counter() - t0)
            if after:
                subprocess.run(["bash", "-c", after], check=True)
        out[name] = {"label": label, "cmd": cmd, "median_s": statistics.median(times),
                     "all_s": times}  # fmt: skip
    return out


# --------------------------------------------------------------------------------------------
# one dataset
# --------------------------------------------------------------------------------------------
def bench_dataset(ds: dict, cfg: dict) -> dict:
    base = WORK / f"data-{ds['key']}"
    shutil.rmtree(base, ignore_errors=True)
    src = base / "src"
    progress(f"data: generating {ds['title']} (seed {SEED})")
    manifest = generate(ds, src)
    settle()
    generated = time.time()
    nbytes = ds["mib"] * MIB if ds["kind"] == "file" else ds["nfiles"] * FILE_SIZE
    # Objects a push must send: the file, or every file plus the folder's listing (DVC's .dir
    # object, mltrail's tree object).
    objects = 1 if ds["kind"] == "file" else ds["nfiles"] + 1
    reps = ds.get("reps", cfg["op_reps"])
    res: dict = {"title": ds["title"], "bytes": nbytes, "files": len(manifest), "reps": reps,
                 "ops": {}, "checks": {}, "errors": {}, "outputs": {}}  # fmt: skip
    progress(f"data: {ds['short']}: raw read and hash limits (cat, md5sum, b3sum)")
    res["raw"] = raw_limits(ds, src, cfg["raw_reps"])

    projects = {tool: Project(tool, base / tool, ds) for tool in TOOLS}
    for p in projects.values():
        p.init(src)
    # mltrail does not cache the hash of a file modified less than 1 s before hashing it (a
    # racily clean file); the generated data must be older than that, as real data would be.
    time.sleep(max(0.0, generated + 1.2 - time.time()))

    def measure(op: str, n: int, sample) -> None:
        """Call ``sample(tool, project, rep)`` -> (seconds, check error or None, output) ``n``
        times per tool, the tools taking turns; record the median of the checked samples."""
        progress(f"data: {ds['short']}: {op} x {n}")
        times: dict[str, list[float]] = {tool: [] for tool in TOOLS}
        entry = res["ops"].setdefault(op, {})
        for rep in range(n):
            for tool, p in projects.items():
                if tool in entry:  # failed or not available: not tried again
                    continue
                try:
                    s, bad, output = sample(tool, p, rep)
                except NotAvailable as e:
                    entry[tool] = {"s": None, "na": str(e)}
                    continue
                except (ToolFailed, subprocess.CalledProcessError, OSError) as e:
                    entry[tool] = {"s": None, "error": str(e), "all_s": times[tool]}
                    res["errors"][f"{op}/{tool}"] = str(e)
                    continue
                times[tool].append(s)
                res["outputs"][f"{op}/{tool}"] = output.strip()[-300:]
                if bad:
                    entry[tool] = {"s": None, "error": bad, "all_s": times[tool]}
                    res["errors"][f"{op}/{tool}"] = bad
        for tool in TOOLS:
            if tool not in entry:
                entry[tool] = {"s": statistics.median(times[tool]), "all_s": times[tool]}

    # 1. add, first time: a fresh project (and copy of the data) for every repetition
    def add(tool: str, p: Project, rep: int):
        if rep:
            p.reset(src)
        r = p.add()
        return r["s"], None, r["stdout"]

    measure("add", reps, add)

    # 2. status, unchanged
    def status(tool: str, p: Project, rep: int):
        r = p.status()
        return r["s"], None if r["clean"] else "status did not say up to date", r["stdout"]

    measure("status", cfg["status_reps"], status)

    # 3. status after one file changed: a fresh change before every call
    changers = {tool: Changer(ds) for tool in TOOLS}

    def changed(tool: str, p: Project, rep: int):
        changers[tool].change(p.root, rep)
        r = p.status()
        ok = r["modified"] and not r["clean"]
        return r["s"], None if ok else "status did not report the change", r["stdout"]

    try:
        measure("status_changed", cfg["change_reps"], changed)
    finally:
        for c in changers.values():
            c.restore()

    # extra: status with the hash caches deleted (everything is hashed again)
    def rehash(tool: str, p: Project, rep: int):
        p.forget_hashes()
        r = p.status()
        return r["s"], None if r["clean"] else "status did not say up to date", r["stdout"]

    measure("rehash", reps, rehash)

    # 4. push to a local folder (emptied between repetitions)
    def push(tool: str, p: Project, rep: int):
        remote = base / f"remote-{tool}"
        if rep == 0:
            p.remote_add(remote)
        else:
            shutil.rmtree(remote)
        r = p.push()
        n = p.pushed_count(r["stdout"])
        bad = None if n == objects else f"pushed {n} objects, expected {objects}"
        return r["s"], bad, r["stdout"]

    measure("push", reps, push)

    # extra: the same, timed until the remote's bytes are on disk. mltrail syncs before it
    # returns; DVC does not, and its dirty pages are otherwise written back outside its time.
    def push_sync(tool: str, p: Project, rep: int):
        remote = base / f"remote-{tool}"
        shutil.rmtree(remote)
        r = p.push()
        t0 = time.perf_counter()
        os.sync()
        s = r["s"] + time.perf_counter() - t0
        n = p.pushed_count(r["stdout"])
        bad = None if n == objects else f"pushed {n} objects, expected {objects}"
        return s, bad, r["stdout"]

    if res["ops"]["push"]["mltrail"]["s"] is not None:
        measure("push_sync", reps, push_sync)
    pushed = {t for t, e in res["ops"]["push"].items() if e["s"] is not None}
    # Commit, so that a clone sees the pointer and the remote.
    for tool, p in projects.items():
        p.commit("data")
        res["checks"][f"{tool}_git_has_no_data"] = not _git_tracks_data(p)

    # 5. pull into a fresh clone
    def pull(tool: str, p: Project, rep: int):
        if tool not in pushed:
            raise NotAvailable("nothing was pushed")
        clone = p.clone(base / f"clone-{tool}-{rep}")
        r = clone.pull()
        bad = verify(clone.root, p.target, manifest)
        if not KEEP:
            shutil.rmtree(clone.root)
            shutil.rmtree(clone.root.parent / f"{clone.root.name}-dvc-site-cache", True)
        return r["s"], bad, r["stdout"]

    measure("pull", reps, pull)

    # 6. checkout after deleting the workspace copy (each tool's default link type), then
    # again with both tools copying
    for op, copy in (("checkout", False), ("checkout_copy", True)):

        def checkout(tool: str, p: Project, rep: int, copy: bool = copy):
            _remove(p.root / p.target)
            r = p.checkout(copy=copy)
            return r["s"], verify(p.root, p.target, manifest), r["stdout"]

        measure(op, reps, checkout)

    if not KEEP:
        shutil.rmtree(base, ignore_errors=True)
        settle()
    return res


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        # Hardlinked files (link = "hardlink") are read-only; rm -rf needs only writable folders.
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _git_tracks_data(p: Project) -> bool:
    out = subprocess.run(
        ["git", "-C", str(p.root), "ls-files", "--", p.target],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return bool(out.strip())


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def fmt_s(s: float | None) -> str:
    if s is None:
        return "n/a"
    if s >= 100:
        return f"{s:,.0f} s"
    if s >= 1:
        return f"{s:.2f} s"
    return f"{s * 1e3:.0f} ms" if s >= 0.1 else f"{s * 1e3:.1f} ms"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "n/a"
    return f"{r:,.0f}x" if r >= 10 else f"{r:.1f}x"


def op_seconds(res: dict, op: str, tool: str) -> float | None:
    return res["ops"].get(op, {}).get(tool, {}).get("s")


def op_ratio(res: dict, op: str) -> float | None:
    mt, dv = op_seconds(res, op, "mltrail"), op_seconds(res, op, "dvc")
    return dv / mt if mt and dv is not None else None


def hash_fraction(res: dict, op: str, ref: str = "cat") -> float | None:
    """mltrail's throughput on ``op`` as a fraction of a standard tool's (default: `cat`)."""
    mt = op_seconds(res, op, "mltrail")
    raw = res["raw"].get(ref)
    return raw["median_s"] / mt if mt and raw else None


def table(ds: dict, res: dict, cfg: dict) -> str:
    w = [33, 10, 10, 9, 14]
    title = f"4. Data: {ds['title']}"
    out = ["", title, "=" * len(title)]
    head = ("operation", "DVC", "mltrail", "DVC/mt", "goal")
    out.append(f"{head[0]:<{w[0]}}{head[1]:>{w[1]}}{head[2]:>{w[2]}}{head[3]:>{w[3]}}"
               f"{head[4]:>{w[4]}}")  # fmt: skip
    out.append("-" * sum(w))
    what_changed = "1 MiB rewritten" if ds["kind"] == "file" else "one file changed"
    labels = dict(OPS + EXTRA)
    labels["status"] = f"status, unchanged (median of {cfg['status_reps']})"
    labels["status_changed"] = f"status, {what_changed}" + (
        f" (med. {cfg['change_reps']})" if cfg["change_reps"] > 1 else ""
    )
    for op, marker in [(op, "") for op, _ in OPS] + [(op, "*") for op, _ in EXTRA]:
        cells = []
        for tool in TOOLS:
            entry = res["ops"].get(op, {}).get(tool, {})
            cells.append("FAIL" if "error" in entry else fmt_s(entry.get("s")))
        r = op_ratio(res, op)
        goal = ""
        if not marker:
            status = "n/a" if r is None else ("PASS" if r >= ds["goal"] else "MISS")
            goal = f">={ds['goal']:.0f}x {status}"
        out.append(f"{labels[op] + marker:<{w[0]}}{cells[0]:>{w[1]}}{cells[1]:>{w[2]}}"
                   f"{fmt_ratio(r):>{w[3]}}{goal:>{w[4]}}")  # fmt: skip
    out.append("DVC/mt: DVC's time / mltrail's time; * extra row, no target")
    if res["reps"] > 1:
        out.append(f"add, push, pull, checkout, *: median of {res['reps']}, the tools taking turns")
    gb = res["bytes"] / 1e9
    out.append(f"Same bytes, standard tools (page cache warm, median of {cfg['raw_reps']}):")
    out.append(f"  {'command':<38}{'time':>10}  {'speed':>11}")
    for item in res["raw"].values():
        s = item["median_s"]
        out.append(f"  {item['label']:<38}{fmt_s(s):>10}  {gb / s:6.2f} GB/s")
    notes = []
    if ds["kind"] == "file":

        def pct(op: str, ref: str) -> str:
            f = hash_fraction(res, op, ref)
            return "n/a" if f is None else f"{f * 100:.0f}%"

        notes.append(
            "mltrail's speed as a share of cat's (page cache) / dd's (disk) / b3sum's: add "
            f"{pct('add', 'cat')} / {pct('add', 'dd_direct')} / {pct('add', 'b3sum')} (hash + "
            "durable copy into the store); status after deleting the stat cache (hash alone) "
            f"{pct('rehash', 'cat')} / {pct('rehash', 'dd_direct')} / {pct('rehash', 'b3sum')}. "
            f"Target: add >= {TARGETS['hash_vs_read'] * 100:.0f}% of cat's."
        )
    if ds["key"] == "large_tree":
        s = op_seconds(res, "status", "mltrail")
        verdict = "n/a" if s is None else ("PASS" if s < TARGETS["status_large_s"] else "MISS")
        notes.append(f"target: mltrail status of the unchanged tree under "
                     f"{TARGETS['status_large_s']:.0f} s: {fmt_s(s)}, {verdict}.")  # fmt: skip
    for key, err in res["errors"].items():
        notes.append(f"FAIL {key}: {err}")
    for op_tool in sorted({f"{op}/{t}" for op, d in res["ops"].items() for t in d}):
        op, tool = op_tool.split("/")
        na = res["ops"][op][tool].get("na")
        if na:
            notes.append(f"n/a {op_tool}: {na}")
    bad = [k for k, v in res["checks"].items() if v is False]
    notes.append(
        "checks: status outputs as expected, pulled and checked-out bytes identical to the "
        "originals (BLAKE3 of every file), no data in git: "
        + ("all correct" if not res["errors"] and not bad else "PROBLEMS, see above " + str(bad))
    )
    for note in notes:
        out.extend(textwrap.wrap(note, 78, subsequent_indent="  "))
    return "\n".join(line.rstrip() for line in out)


def tool_versions() -> dict:
    out = {}
    for tool in TOOLS:
        try:
            out[tool] = subprocess.run(
                [str(BIN / tool), "--version"], capture_output=True, text=True, env=base_env()
            ).stdout.strip()
        except OSError as e:
            out[tool] = f"unavailable: {e}"
    src = str(HERE.parent)
    for name, args in (
        ("git", ["git", "--version"]),
        ("b3sum", ["b3sum", "--version"]),
        ("mltrail_commit", ["git", "-C", src, "rev-parse", "--short", "HEAD"]),
        # Uncommitted changes to mltrail's source, which the editable install runs as they are.
        ("mltrail_src_changes", ["git", "-C", src, "status", "--porcelain", "--", "src"]),
    ):
        try:
            out[name] = subprocess.run(args, capture_output=True, text=True).stdout.strip()
        except OSError:
            out[name] = None
    return out


def bench_data(cfg: dict, results: dict) -> str:
    dcfg = cfg["data"]
    if not (BIN / "dvc").exists():
        raise DataBenchError(f"no dvc in {BIN}: run benchmarks/run.sh (it installs dvc)")
    WORK.mkdir(parents=True, exist_ok=True)
    res: dict = {"config": dcfg, "targets": TARGETS, "versions": tool_versions(), "datasets": {}}
    results["data"] = res
    texts = []
    for ds in datasets(dcfg):
        try:
            r = bench_dataset(ds, dcfg)
        except (subprocess.CalledProcessError, ToolFailed, OSError) as e:
            raise DataBenchError(f"{ds['key']}: {e}") from e
        r["ratios"] = {op: op_ratio(r, op) for op, _ in OPS + EXTRA}
        r["goal"] = ds["goal"]
        r["short"] = ds["short"]
        if ds["kind"] == "file":
            r["hash_vs_read"] = {
                f"{op}_vs_{ref}": hash_fraction(r, op, ref)
                for op in ("add", "rehash")
                for ref in ("cat", "dd_direct", "b3sum")
            }
        res["datasets"][ds["key"]] = r
        texts.append(table(ds, r, dcfg))
    res["failures"] = {f"{k}: {e}": v for k, d in res["datasets"].items()
                       for e, v in d["errors"].items()}  # fmt: skip
    v = res["versions"]
    dirty = " + uncommitted src/ changes" if v.get("mltrail_src_changes") else ""
    head = (
        f"DVC {v.get('dvc')} vs {v.get('mltrail')} (commit {v.get('mltrail_commit')}{dirty}), "
        "through their CLIs"
    )
    return "\n" + head + "\n" + "\n".join(texts)


def summary_targets(results: dict) -> list[tuple[str, float | None, float, str]]:
    """(name, value, goal, kind) rows for bench.py's summary."""
    data = results.get("data")
    if not data:
        return []
    rows = []
    short = {"add": "add", "status": "status unchanged", "status_changed": "status 1 changed",
             "push": "push", "pull": "pull (clone)", "checkout": "checkout"}  # fmt: skip
    for r in data["datasets"].values():
        for op, _ in OPS:
            rows.append((f"data {r['short']}: {short[op]}", r["ratios"].get(op), r["goal"],
                         "ratio"))  # fmt: skip
    big = data["datasets"].get("big_file")
    if big:
        hv = big["hash_vs_read"]
        rows.append((f"data {big['short']}: add vs cat speed", hv["add_vs_cat"],
                     TARGETS["hash_vs_read"], "fraction"))  # fmt: skip
        rows.append((f"data {big['short']}: rehash vs cat speed", hv["rehash_vs_cat"],
                     TARGETS["hash_vs_read"], "fraction"))  # fmt: skip
    large = data["datasets"].get("large_tree")
    if large:
        rows.append((f"data {large['short']}: mltrail status", op_seconds(large, "status",
                     "mltrail"), TARGETS["status_large_s"], "seconds"))  # fmt: skip
    return rows
