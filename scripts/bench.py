#!/usr/bin/env python3
"""bench.py: slotd's benchmark (run by `make bench` through scripts/bench.sh).

Every figure is measured against a baseline taken in the same run, on the
same machine and filesystem, and printed beside the target it is held to.
Nothing here passes or fails: a missed target is reported as such, and the
exit status only says whether the benchmark itself could run.

Benchmarks (BENCHMARKS at the bottom):

  install  A ~150 MB, 3000-file package, once gzip and once zstd, installed
           with `slotctl install` in the steady state of a worker: both slots
           hold a version of the same size, so the inactive slot's old tree
           is moved aside and deleted by slotctl's background reaper. The
           baseline is `tar -x` of the same archive into a new folder of the
           same filesystem followed by sync; its previous output is deleted
           right after, as the reaper does for slotctl. The two alternate
           within each round, for several rounds, and the medians are
           compared (target: slotctl <= 1.25 x baseline).
  rss      Peak RSS of `slotctl install` (target: under 16 MB whatever the
           package), for the packages above, for packages 1/30 their size,
           and for two variants of the large package: zstd with `--long=27`
           (a 128 MiB window) and a legacy, not prehashed, signature.

A benchmark is a function `bench_NAME(ctx)` that appends Result rows to
ctx.results; add it to BENCHMARKS.

Before every timed run the previous run's deletions are finished and synced,
so no run pays for another's writeback. One effect remains that no short
benchmark avoids: ext4 without a journal avoids reusing an inode freed less
than 60 s ago (6 min while its inode table block is dirty), and skipping them
costs every new file a scan (find_inode_bit() -> recently_deleted()). Both
sides create 3000 files shortly after 3000 were deleted, so both pay, by
amounts that vary from run to run: the system CPU time printed for each run
shows it, the user CPU time is the stable part. A worker that updates hours
apart does not pay it.

The data is generated deterministically (seeded) in a work folder under
/var/tmp, a disk-backed filesystem like the one a slot lives on (/tmp is
often a tmpfs), and deleted at the end unless --keep is given.
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_NAME = "bench-app"
# Alternated, so every timed install replaces the tree of an earlier install
# of the same size and is a change of version (installing the active version
# again would return "already up to date" at once). With two slots, the slot
# an install lands in held the same version two installs ago; slotctl never
# compares an old tree with the new one, so which version it held does not
# matter, only its size.
VERSIONS = ("1.0.0", "1.1.0")
EXTENSIONS = {"gzip": ".tar.gz", "zstd": ".tar.zst"}
COMPRESSORS = {"gzip": ["gzip", "-n", "-c"], "zstd": ["zstd", "-q", "-T0", "-c"]}

INSTALL_RATIO_TARGET = 1.25
RSS_TARGET_MB = 16.0

# Content of the generated files: segments of random bytes (binaries,
# already-compressed assets) and of word-like text (code, configuration,
# data), so the compressor does real work without the result being
# trivially small.
RANDOM_SHARE = 0.35
SEGMENT_MIN, SEGMENT_MAX = 2048, 32768
VOCABULARY_WORDS = 6000
# Large enough that zstd's window (2 MiB at its default level) rarely finds
# a whole line again, as with real text.
TEXT_POOL_LINES = 120000
SMALL_FRACTION = 30

QUIET_TIMEOUT = 300.0
GNU_TIME = "/usr/bin/time"


@dataclass
class Result:
    """One line of the final table."""

    label: str
    figures: str
    target: str = ""
    met: bool | None = None  # None: no target, information only

    def line(self) -> str:
        if self.met is None:
            return f"{self.label}: {self.figures}"
        verdict = "met" if self.met else "NOT met"
        return f"{self.label}: {self.figures} (target {self.target}: {verdict})"


@dataclass
class Run:
    """One measured command."""

    seconds: float
    maxrss_kib: int  # the command's own peak RSS
    # CPU time with the children it waited for (tar's decompressor). The
    # system part carries the filesystem's noise, the user part hardly any.
    user: float
    system: float

    def cpu(self) -> str:
        return f"cpu {self.user:.2f}+{self.system:.2f} s"


@dataclass
class Context:
    args: argparse.Namespace
    repo: Path
    slotctl: Path
    work: Path
    key_pub: Path = Path()
    key_sec: Path = Path()
    results: list[Result] = field(default_factory=list)
    # Built packages by set name: {(version, format): path}.
    packages: dict[str, dict[tuple[str, str], Path]] = field(default_factory=dict)
    # Peak RSS (KiB) of slotctl installs, by (unpacked size, format).
    rss_kib: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    n_stores: int = 0


def say(msg: str) -> None:
    print(msg, flush=True)


def die(msg: str) -> None:
    print(f"bench: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(argv: list, **kw) -> subprocess.CompletedProcess:
    """Runs a helper command (not a measured one); its failure ends the run."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    p = subprocess.run([str(a) for a in argv], text=True, **kw)
    if p.returncode != 0:
        die(f"{' '.join(map(str, argv))} exited with {p.returncode}: {(p.stderr or '').strip()}")
    return p


def measure(argv: list, what: str) -> Run:
    """Runs argv; returns its wall time, peak RSS and CPU time.

    Not getrusage(RUSAGE_CHILDREN) or wait4 around a child of this script:
    the kernel carries a process's peak RSS across exec, and a child forked
    (or vforked) from Python starts with Python's peak, so every child would
    seem to use at least as much as this script (tens of MB here, even for
    `true`). GNU time forks the command from a small process and reports
    that child's own wait4 figures. Without it, the child's VmHWM (the peak
    of the address space exec gave it) is polled instead."""
    argv = [str(a) for a in argv]
    with tempfile.NamedTemporaryFile("r") as report, tempfile.TemporaryFile() as err:
        if os.access(GNU_TIME, os.X_OK):
            start = time.perf_counter()
            p = subprocess.run([GNU_TIME, "-f", "%M %U %S", "-o", report.name, *argv],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            seconds = time.perf_counter() - start
            status = p.returncode
            if status == 0:
                rss, user, system = report.read().split()[-3:]
                result = Run(seconds, int(rss), float(user), float(system))
        else:
            start = time.perf_counter()
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=err)
            hwm = 0
            while True:
                pid, wstatus, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                hwm = max(hwm, vm_hwm_kib(p.pid))
                time.sleep(0.005)
            seconds = time.perf_counter() - start
            status = p.returncode = os.waitstatus_to_exitcode(wstatus)
            result = Run(seconds, hwm, ru.ru_utime, ru.ru_stime)
        if status != 0:
            err.seek(0)
            die(f"{what} exited with {status}: {err.read().decode(errors='replace').strip()}")
    return result


def vm_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.0f} MB"


def rss_mb(kib: int) -> float:
    """ru_maxrss is in KiB; MB (10^6 bytes) like every other size here."""
    return kib * 1024 / 1e6


def median_cpu(runs: list[Run]) -> str:
    return (f"cpu median {statistics.median(r.user for r in runs):.2f}+"
            f"{statistics.median(r.system for r in runs):.2f} s")


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s [{min(values):.2f}-{max(values):.2f}]"


# ---------------------------------------------------------------------------
# Test data


@dataclass
class Layout:
    """The file tree a package holds: the same names and sizes in every
    version, so versions differ in content only."""

    files: list[tuple[str, int]]
    total: int


def make_layout(seed: int, n_files: int, total: int) -> Layout:
    rng = random.Random(seed)
    tops = ["bin", "lib", "share", "models", "config", "web", "data"]
    exts = [".so", ".py", ".json", ".txt", ".bin", ".dat", ".js", ".conf"]
    # About 30 files a folder, two or three levels deep.
    dirs = []
    for i in range(max(1, n_files // 30)):
        parts = [rng.choice(tops), f"d{i:03d}"]
        if rng.random() < 0.5:
            parts.append(f"s{rng.randrange(4)}")
        dirs.append("/".join(parts))
    # Log-normal sizes: many small files, a few of several MB.
    raw = [rng.lognormvariate(0.0, 1.6) for _ in range(n_files)]
    scale = total / sum(raw)
    sizes = [max(32, int(x * scale)) for x in raw]
    sizes[sizes.index(max(sizes))] += total - sum(sizes)
    files = [(f"{rng.choice(dirs)}/f{i:04d}{rng.choice(exts)}", size)
             for i, size in enumerate(sizes)]
    return Layout(files, total)


def make_text_pool(seed: int) -> list[bytes]:
    """Lines of pseudo-words with a Zipf-like word frequency."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz_"
    words = ["".join(rng.choices(letters, k=rng.randint(2, 11))) for _ in range(VOCABULARY_WORDS)]
    cum, total = [], 0.0
    for rank in range(VOCABULARY_WORDS):
        total += 1.0 / (rank + 1)
        cum.append(total)
    lines = []
    for _ in range(TEXT_POOL_LINES):
        indent = " " * (4 * rng.randrange(4))
        words_of_line = rng.choices(words, cum_weights=cum, k=rng.randint(3, 14))
        lines.append((indent + " ".join(words_of_line) + "\n").encode())
    return lines


def file_content(rng: random.Random, size: int, pool: list[bytes]) -> bytes:
    parts, left = [], size
    while left > 0:
        n = min(left, rng.randint(SEGMENT_MIN, SEGMENT_MAX))
        if rng.random() < RANDOM_SHARE:
            parts.append(rng.randbytes(n))
        else:
            text = b"".join(rng.choices(pool, k=n // 40 + 2))
            while len(text) < n:
                text += b"".join(rng.choices(pool, k=64))
            parts.append(text[:n])
        left -= n
    return b"".join(parts)


def write_tree(root: Path, layout: Layout, seed: int, pool: list[bytes]) -> None:
    rng = random.Random(seed)
    for rel, size in layout.files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file_content(rng, size, pool))


def make_keys(ctx: Context) -> None:
    base = ctx.work / "bench-key"
    ctx.key_pub, ctx.key_sec = Path(f"{base}.pub"), Path(f"{base}.key")
    keygen = ctx.repo / "scripts" / "slot-keygen"
    if os.access(keygen, os.X_OK):
        run([keygen, base])
    else:
        run(["minisign", "-G", "-W", "-p", ctx.key_pub, "-s", ctx.key_sec])


def sign(ctx: Context, package: Path) -> None:
    run(["minisign", "-S", "-s", ctx.key_sec, "-m", package], stdin=subprocess.DEVNULL)


def package_by_hand(ctx: Context, tree: Path, version: str, fmt: str, outdir: Path) -> Path:
    """What scripts/slot-package does: slot.ini first, then the tree sorted,
    compressed, signed beside it."""
    stage = outdir / f".stage-{version}-{fmt}"
    stage.mkdir()
    (stage / "slot.ini").write_text(f"[package]\nname = {PACKAGE_NAME}\nversion = {version}\n")
    pkg = outdir / f"{PACKAGE_NAME}-{version}{EXTENSIONS[fmt]}"
    with open(pkg, "wb") as out:
        tar = subprocess.Popen(["tar", "--create", "--file=-", "--format=gnu", "--sort=name",
                                "--owner=0", "--group=0", "--numeric-owner",
                                "-C", str(stage), "slot.ini", "-C", str(tree),
                                *sorted(os.listdir(tree))], stdout=subprocess.PIPE)
        comp = subprocess.Popen(COMPRESSORS[fmt], stdin=tar.stdout, stdout=out)
        tar.stdout.close()
        if comp.wait() != 0 or tar.wait() != 0:
            die(f"building {pkg} failed")
    shutil.rmtree(stage)
    sign(ctx, pkg)
    return pkg


def build_package(ctx: Context, tree: Path, version: str, fmt: str, outdir: Path) -> Path:
    tool = ctx.repo / "scripts" / "slot-package"
    if not os.access(tool, os.X_OK):
        return package_by_hand(ctx, tree, version, fmt, outdir)
    out = run([tool, "-n", PACKAGE_NAME, "-v", version, "-k", ctx.key_sec, "-c", fmt,
               "-o", outdir, tree], env=dict(os.environ, TMPDIR=str(ctx.work))).stdout
    return Path(out.strip().splitlines()[-1])


def packages(ctx: Context, name: str, layout: Layout) -> dict[tuple[str, str], Path]:
    """The package set `name`: every version in every format, built once per
    run. Each version's tree is written, packaged and deleted in turn."""
    if name in ctx.packages:
        return ctx.packages[name]
    t0 = time.monotonic()
    say(f"generating {mb(layout.total)} in {len(layout.files)} files, {len(VERSIONS)} "
        f"versions, packaging as {', '.join(ctx.args.formats)} ...")
    outdir = ctx.work / f"packages-{name}"
    outdir.mkdir()
    pool = make_text_pool(ctx.args.seed)
    built = {}
    for i, version in enumerate(VERSIONS):
        tree = ctx.work / f"tree-{name}-{version}"
        write_tree(tree, layout, ctx.args.seed * 1000 + i + 1, pool)
        for fmt in ctx.args.formats:
            built[version, fmt] = build_package(ctx, tree, version, fmt, outdir)
        shutil.rmtree(tree)
    for p in sorted(built.values()):
        size = p.stat().st_size
        say(f"  {p.name}: {mb(size)} ({size / layout.total:.0%} of the tree)")
    say(f"  ({time.monotonic() - t0:.0f} s)")
    ctx.packages[name] = built
    return built


def large_layout(ctx: Context) -> Layout:
    return make_layout(ctx.args.seed, ctx.args.files, int(ctx.args.size_mb * 1e6))


def small_layout(ctx: Context) -> Layout:
    total = int(ctx.args.size_mb * 1e6 / SMALL_FRACTION)
    return make_layout(ctx.args.seed + 1, max(10, ctx.args.files // SMALL_FRACTION), total)


# ---------------------------------------------------------------------------
# Slot store and measured steps


@dataclass
class Store:
    dir: Path
    config: Path

    @property
    def root(self) -> Path:
        return self.dir / "root"


def make_store(ctx: Context, name: str) -> Store:
    ctx.n_stores += 1
    d = ctx.work / f"store-{ctx.n_stores}-{name}"
    d.mkdir()
    config = d / "slotd.conf"
    # hooks_dir points at a folder that does not exist, so hooks installed on
    # this machine (/etc/slotd/hooks.d) take no part.
    config.write_text(f"""[agent]
worker_id = bench
state_dir = {d}/state
hooks_dir = {d}/no-hooks
[slots]
root = {d}/root
compatible = {PACKAGE_NAME}
max_unpacked_size = 4G
min_free_space = 64M
[trust]
keys = {ctx.key_pub}
allow_downgrade = yes
""")
    return Store(d, config)


def settle(folder: Path | None = None) -> None:
    """Waits until no .trash-* folder is left in folder (the detached reaper
    of the previous install is done) and syncs, so that neither its
    deletions nor earlier dirty pages are written during a timed run."""
    deadline = time.monotonic() + QUIET_TIMEOUT
    while folder and folder.is_dir() and any(n.startswith(".trash-") for n in os.listdir(folder)):
        if time.monotonic() > deadline:
            die(f"{folder}/.trash-* still there after {QUIET_TIMEOUT:.0f} s")
        time.sleep(0.02)
    os.sync()


def slotctl_install(ctx: Context, store: Store, package: Path, version: str,
                    sig: Path | None = None) -> Run:
    settle(store.root / "slots")
    r = measure([ctx.slotctl, "-q", "-c", store.config, "install", package,
                 *(["--sig", sig] if sig else [])], f"slotctl install {package.name}")
    # Guards the figure: an install that did nothing would be fast.
    ini = (store.root / "current" / "slot.ini").read_text()
    if f"version = {version}\n" not in ini:
        die(f"after installing {package.name}, {store.root}/current is not version {version}")
    return r


def tar_extract(package: Path, dest: Path, previous: Path | None) -> Run:
    """The baseline: tar -x into a new folder, then sync, timed together.
    The previous output is deleted afterwards, outside the timing, as
    slotctl's reaper deletes the old tree after an install."""
    dest.mkdir()
    settle()
    start = time.perf_counter()
    r = measure(["tar", "-x", "-f", package, "-C", dest], f"tar -x -f {package.name}")
    os.sync()
    r.seconds = time.perf_counter() - start
    if previous:
        shutil.rmtree(previous)
    return r


# ---------------------------------------------------------------------------
# Benchmarks


def bench_install(ctx: Context) -> None:
    a = ctx.args
    layout = large_layout(ctx)
    pkgs = packages(ctx, "large", layout)
    what = f"install {mb(layout.total)}/{len(layout.files)} files"

    for fmt in a.formats:
        store = make_store(ctx, f"large-{fmt}")
        # The steady state: both slots filled, the second version active.
        for version in VERSIONS:
            slotctl_install(ctx, store, pkgs[version, fmt], version)
        # The baseline's output goes beside the store's root, so that both
        # sides create their files in the same part of the filesystem.
        tar_out = [store.dir / "tar-warm"]
        tar_extract(pkgs[VERSIONS[0], fmt], tar_out[-1], None)

        s_runs, t_runs = [], []
        for i in range(a.rounds):
            version = VERSIONS[i % len(VERSIONS)]
            pkg = pkgs[version, fmt]
            tar_out.append(store.dir / f"tar-{i}")
            # Alternating who goes first keeps a drift of the machine (the
            # page cache, writeback, a neighbour) from favouring one side.
            steps = [(s_runs, lambda: slotctl_install(ctx, store, pkg, version)),
                     (t_runs, lambda: tar_extract(pkg, tar_out[-1], tar_out[-2]))]
            for runs, step in steps if i % 2 == 0 else reversed(steps):
                runs.append(step())
            s, t = s_runs[-1], t_runs[-1]
            say(f"  {fmt} round {i + 1}/{a.rounds}: slotctl {s.seconds:.2f} s ({s.cpu()}, "
                f"rss {rss_mb(s.maxrss_kib):.1f} MB), tar -x + sync {t.seconds:.2f} s ({t.cpu()})")
        shutil.rmtree(tar_out[-1])
        settle(store.root / "slots")

        s_med = statistics.median(r.seconds for r in s_runs)
        t_med = statistics.median(r.seconds for r in t_runs)
        ratio = s_med / t_med
        per_round = [x.seconds / y.seconds for x, y in zip(s_runs, t_runs)]
        say(f"  {fmt}: slotctl {spread([r.seconds for r in s_runs])}, {median_cpu(s_runs)}; "
            f"tar -x + sync {spread([r.seconds for r in t_runs])}, {median_cpu(t_runs)}; "
            f"ratio per round {min(per_round):.2f}-{max(per_round):.2f}")
        ctx.rss_kib.setdefault((layout.total, fmt), []).extend(r.maxrss_kib for r in s_runs)
        ctx.results.append(Result(
            f"{what} ({fmt})",
            f"slotctl {s_med:.2f} s, tar -x + sync {t_med:.2f} s, ratio {ratio:.2f}",
            f"<= {INSTALL_RATIO_TARGET}", ratio <= INSTALL_RATIO_TARGET))


def rss_installs(ctx: Context, name: str, layout: Layout) -> None:
    """Installs every version of package set `name` once per format, unless
    bench_install measured those already."""
    pkgs = packages(ctx, name, layout)
    for fmt in ctx.args.formats:
        if (layout.total, fmt) in ctx.rss_kib:
            continue
        store = make_store(ctx, f"{name}-{fmt}")
        ctx.rss_kib[layout.total, fmt] = [
            slotctl_install(ctx, store, pkgs[v, fmt], v).maxrss_kib for v in VERSIONS]
        settle(store.root / "slots")


def long_window_variant(ctx: Context, pkgs: dict) -> tuple[str, Path, Path | None] | None:
    """The zstd package recompressed with --long=27: a frame with a 128 MiB
    window, as `zstd --long` or `--ultra -22` make. A decoder keeps up to a
    window of output in memory, so its memory follows the frame, not the
    code that reads it."""
    if "zstd" not in ctx.args.formats:
        return None
    source = pkgs[VERSIONS[0], "zstd"]
    outdir = ctx.work / "packages-long"
    outdir.mkdir()
    pkg = outdir / source.name
    with open(pkg, "wb") as out:
        dec = subprocess.Popen(["zstd", "-q", "-d", "-c", str(source)], stdout=subprocess.PIPE)
        enc = subprocess.Popen(["zstd", "-q", "-1", "--long=27", "-T0", "-c"],
                               stdin=dec.stdout, stdout=out)
        dec.stdout.close()
        if enc.wait() != 0 or dec.wait() != 0:
            die(f"recompressing {source} with zstd --long=27 failed")
    sign(ctx, pkg)
    return "zstd --long=27 (128 MiB window)", pkg, None


def legacy_signature_variant(ctx: Context, pkgs: dict) -> tuple[str, Path, Path | None]:
    """The package with a legacy (not prehashed) minisign signature, which
    signs the content itself rather than its BLAKE2b hash; SPEC section 4
    accepts both."""
    fmt = ctx.args.formats[0]
    pkg = pkgs[VERSIONS[0], fmt]
    sig = ctx.work / f"{pkg.name}.legacy.minisig"
    run(["minisign", "-S", "-l", "-s", ctx.key_sec, "-m", pkg, "-x", sig],
        stdin=subprocess.DEVNULL)
    return f"{fmt}, legacy signature (minisign -l)", pkg, sig


# Packages that differ from the plain ones in one property that may drive
# memory use. Each maker returns (description, package, signature or None
# for the default), or None when the run's formats leave it out.
RSS_VARIANTS = [long_window_variant, legacy_signature_variant]


def bench_rss(ctx: Context) -> None:
    large, small = large_layout(ctx), small_layout(ctx)
    rss_installs(ctx, "large", large)
    rss_installs(ctx, "small", small)

    peaks = {key: rss_mb(max(v)) for key, v in sorted(ctx.rss_kib.items())}
    say("  peak RSS of slotctl install: "
        + ", ".join(f"{mb(size)} {fmt} {v:.1f} MB" for (size, fmt), v in peaks.items()))
    worst = max(peaks.values())
    ctx.results.append(Result(
        "peak RSS slotctl install",
        f"{worst:.1f} MB (highest of {' and '.join(mb(s) for s in sorted({s for s, _ in peaks}))}"
        f" packages, {', '.join(ctx.args.formats)}; lowest {min(peaks.values()):.1f} MB)",
        f"< {RSS_TARGET_MB:.0f} MB", worst < RSS_TARGET_MB))

    for make in RSS_VARIANTS:
        made = make(ctx, ctx.packages["large"])
        if made is None:
            continue
        what, pkg, sig = made
        store = make_store(ctx, "variant")
        rss = rss_mb(slotctl_install(ctx, store, pkg, VERSIONS[0], sig).maxrss_kib)
        settle(store.root / "slots")
        label = f"peak RSS slotctl install, {mb(large.total)} {what}"
        say(f"  {label}: {rss:.1f} MB")
        ctx.results.append(Result(label, f"{rss:.1f} MB", f"< {RSS_TARGET_MB:.0f} MB",
                                  rss < RSS_TARGET_MB))


BENCHMARKS = {
    "install": bench_install,
    "rss": bench_rss,
}


def parse_args(argv):
    p = argparse.ArgumentParser(description="slotd benchmark: slotctl against baselines "
                                            "measured in the same run")
    p.add_argument("--rounds", type=int, default=7, help="timed rounds per format [7]")
    p.add_argument("--size-mb", type=float, default=150, help="package tree size in MB [150]")
    p.add_argument("--files", type=int, default=3000, help="files in the package [3000]")
    p.add_argument("--formats", default=",".join(EXTENSIONS),
                   help=f"compressions, comma-separated [{','.join(EXTENSIONS)}]")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated data [1]")
    p.add_argument("--only", default=",".join(BENCHMARKS),
                   help=f"benchmarks to run [{','.join(BENCHMARKS)}]")
    p.add_argument("--workdir", default="/var/tmp",
                   help="where the work folder goes: on the filesystem to measure [/var/tmp]")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--slotctl", help="the slotctl to measure [./slotctl of the repository]")
    a = p.parse_args(argv)
    a.formats = [f for f in a.formats.split(",") if f]
    a.only = [b for b in a.only.split(",") if b]
    for f in a.formats:
        if f not in EXTENSIONS:
            p.error(f"unknown format {f!r} (one of {', '.join(EXTENSIONS)})")
    for b in a.only:
        if b not in BENCHMARKS:
            p.error(f"unknown benchmark {b!r} (one of {', '.join(BENCHMARKS)})")
    if a.rounds < 1 or a.files < 1 or a.size_mb <= 0:
        p.error("--rounds, --files and --size-mb must be positive")
    return a


def main(argv) -> int:
    args = parse_args(argv)
    repo = Path(__file__).resolve().parent.parent
    slotctl = Path(args.slotctl).resolve() if args.slotctl else repo / "slotctl"
    if not os.access(slotctl, os.X_OK):
        die(f"{slotctl} not found: run `make` first")
    # `make SANITIZE=1` links the same ./slotctl, and a later `make` keeps
    # it (it is newer than the objects of the plain build).
    if any(s in slotctl.read_bytes() for s in (b"__asan_init", b"__tsan_init", b"__msan_init")):
        die(f"{slotctl} is a sanitizer build, which would be measured instead of slotctl: "
            "relink it without SANITIZE (rm slotctl slotd; make) or pass --slotctl")
    for tool in ["tar", "minisign", *args.formats]:
        if not shutil.which(tool):
            die(f"{tool} not found in PATH")

    work = Path(tempfile.mkdtemp(prefix="slotd-bench.", dir=args.workdir))
    ctx = Context(args, repo, slotctl, work)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    try:
        say(f"slotd benchmark in {work}")
        make_keys(ctx)
        for name in args.only:
            say(f"== {name}")
            BENCHMARKS[name](ctx)
    finally:
        # A detached reaper may still be deleting trash in the work folder.
        for store in work.glob("store-*"):
            settle(store / "root" / "slots")
        if args.keep:
            say(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    say(f"== results ({time.monotonic() - started:.0f} s; load average {load_before:.1f} "
        f"before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs)")
    for r in ctx.results:
        say(r.line())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
