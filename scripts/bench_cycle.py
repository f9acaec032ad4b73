#!/usr/bin/env python3
"""bench_cycle.py: slotd's update-cycle benchmark (run by scripts/bench.sh
after bench.py).

Every figure is printed beside its target and, where one makes sense, as a
ratio against a baseline measured in the same run. Nothing here passes or
fails: a missed target is printed as "not met", and the exit status only
says whether the benchmark itself could run.

  1 restart   Under a real systemd (tests/integration/sdbox/sdbox.sh): the
              demo service behind demo.socket (Accept=no). Baseline: the
              service's own restart and start times (systemctl inside the
              box, less the cost of reaching the box). `slotctl switch`
              (median of 5, alternating a/b): from the swap of `current` to
              slotctl's exit, less restart + (successes-1) x interval, must
              stay under one interval; a probe loop beside it tells when the
              new version first answered, after which n successes one
              interval apart cannot take less than (n-1) x interval. A
              revert (a package whose /health answers 500, [health] timeout
              3 s): when the old version answers again and when slotctl has
              verified it, after the deadline, counted both from the new
              version's first answer and from the swap (where slotd starts
              its trial); target: interval + the service's start time for
              the old version's first answer, plus (n-1) x interval for the
              verdict.
  2 refused   A client loop (~200 short connections/s) during an update and
              a revert, behind the socket unit, and the same with a unit
              that binds its own port: refused connections (expect 0 behind
              the socket).
  3 download  A ~150 MB, ~3000-file zstd package from nginx (HTTPS on
              loopback): `slotctl update` in the steady state (the inactive
              slot holds a tree of the same size) against `curl | tar
              --zstd -x && sync` into the same filesystem, interleaved,
              medians (target ratio <= 1.3). On ext4 without a journal the
              kernel avoids reusing inodes freed in the last 60 s
              (recently_deleted()), which makes creating files right after
              a large deletion slow, and slotctl's new tree lands where the
              reaper deleted the old one seconds before; --settle 65 waits
              that out before each timed run, at a large cost in time.
  4 idle      slotd polling an unchanged manifest every second (304s): CPU
              per poll (target < 2 ms; baseline: one `curl` conditional GET
              process), VmRSS/VmHWM (target < 8 MB); with a 60 s interval:
              CPU ticks over 10 s idle (target 0) and wakeups; polls
              against a server that closes each connection (a TLS
              handshake per poll): CPU per poll and VmRSS between polls
              (target < 8 MB). And VmRSS
              of slotd as a worker runs it: polling over TLS every second
              and watching demo.service in the box every second (unit
              state over the bus, health and version URLs), listener on
              (target < 8 MB).
  5 events    Trigger POST -> worker_update_started at the collector
              (median of 5, target < 50 ms), and -> the outbox file. A
              backlog of 10,000 events in the outbox: time until delivered
              (target < 30 s), against a Python client posting the same
              bodies over one keep-alive connection.

Processes started here are stopped by PID; the systemd box is stopped with
sdbox.sh; all servers listen on 127.0.0.1; the work folder (under /var/tmp,
a disk-backed filesystem) is removed at the end unless --keep is given.
Needs root (systemd in namespaces), nginx, curl, zstd, minisign, strace.

Also used as its own event collector: `bench_cycle.py --collector
PORT_FILE` (records each POST in memory with its CLOCK_MONOTONIC arrival
time and answers 202 at once; GET /_log returns the record, POST /_reset
clears it).
"""

import argparse
import base64
import ctypes
import http.client
import http.server
import io
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

# The generated package tree, the same as scripts/bench.py's.
from bench import file_content, make_layout, make_text_pool

REPO = Path(__file__).resolve().parent.parent
SDBOX = REPO / "tests" / "integration" / "sdbox" / "sdbox.sh"
DEMO_APP = REPO / "tests" / "demo-app" / "demo-app.py"
SLOT_PACKAGE = REPO / "scripts" / "slot-package"
SLOT_PUBLISH = REPO / "scripts" / "slot-publish"
SLOT_KEYGEN = REPO / "scripts" / "slot-keygen"

SECTIONS = ("restart", "refused", "download", "idle", "events")

# Sections 1 and 2: the health verification the figures are measured with.
HEALTH_INTERVAL = 0.5
HEALTH_SUCCESSES = 3
REVERT_TIMEOUT = 3.0
SWITCH_RUNS = 5
RESTART_RUNS = 5
PROBE_PERIOD = 0.020
CLIENT_RATE = 200.0
CLIENT_THREADS = 4

# Section 3.
BIG_NAME = "cycle-app"
BIG_VERSIONS = ("1.0.0", "1.1.0")
DOWNLOAD_RATIO_TARGET = 1.3

# Section 4.
POLL_CPU_TARGET_MS = 2.0
RSS_TARGET_MB = 8.0
IDLE_WINDOW = 10.0
STRACE_WINDOW = 5.0

# Section 5.
SMALL_NAME = "cycle-small"
TRIGGER_RUNS = 5
TRIGGER_TARGET_MS = 50.0
BACKLOG = 10000
BACKLOG_TARGET_S = 30.0

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------
# Output


def say(msg: str = "") -> None:
    print(msg, flush=True)


class BenchError(Exception):
    pass


def die(msg: str):
    raise BenchError(msg)


@dataclass
class Row:
    """One line of the summary table."""

    section: str
    figure: str
    value: str
    baseline: str = "-"
    ratio: str = "-"
    target: str = "-"
    met: bool | None = None

    def verdict(self) -> str:
        return "-" if self.met is None else ("met" if self.met else "not met")


def print_table(rows: list[Row]) -> None:
    head = Row("section", "figure", "value", "baseline", "ratio", "target")
    cols = [[r.section, r.figure, r.value, r.baseline, r.ratio, r.target,
             "verdict" if r is head else r.verdict()] for r in [head, *rows]]
    widths = [max(len(c[i]) for c in cols) for i in range(len(cols[0]))]
    for n, c in enumerate(cols):
        say("  " + "  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip())
        if n == 0:
            say("  " + "  ".join("-" * w for w in widths))


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def secs(seconds: float) -> str:
    return f"{seconds + 0.0:.3f} s".replace("-0.000", "0.000")


def med(values) -> float:
    return statistics.median(values)


def spread(values, unit=secs) -> str:
    return f"median {unit(med(values))} [{unit(min(values))}..{unit(max(values))}]"


# ---------------------------------------------------------------------------
# Processes


class Procs:
    """Every long-running process this script starts, stopped by PID."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def start(self, argv, **kw) -> subprocess.Popen:
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen([str(a) for a in argv], **kw)
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen, sig=signal.SIGTERM, timeout=10.0) -> None:
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self) -> None:
        for p in reversed(list(self.procs)):
            self.stop(p)


def run(argv, check=True, env=None, timeout=300, **kw) -> subprocess.CompletedProcess:
    """A helper command (not a measured one)."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.run([str(a) for a in argv], text=True, env=env, timeout=timeout, **kw)
    if check and p.returncode != 0:
        die(f"{' '.join(map(str, argv))} exited with {p.returncode}: "
            f"{(p.stderr or '').strip()[-800:]}")
    return p


@dataclass
class Timed:
    rc: int
    start: float  # time.monotonic() at the spawn
    end: float  # time.monotonic() at the exit
    user: float
    system: float
    out: str
    err: str

    @property
    def wall(self) -> float:
        return self.end - self.start


def run_timed(argv, env=None, timeout=600) -> Timed:
    """Runs argv to its end; its wall time (CLOCK_MONOTONIC at both ends) and
    the CPU time of it and of the children it waited for (wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=out,
                             stderr=err, env=env)
        deadline = start + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.kill(p.pid, signal.SIGKILL)
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.0005)
        end = time.monotonic()
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Timed(p.returncode, start, end, ru.ru_utime, ru.ru_stime,
                     out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(what: str, pred, timeout: float, period=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            die(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(period)


# ---------------------------------------------------------------------------
# HTTP helpers


def http_get(port: int, path: str, timeout=2.0) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def served_version(port: int, timeout=2.0) -> str | None:
    try:
        status, body = http_get(port, "/api/v1/version", timeout)
        return json.loads(body)["codebase_version"] if status == 200 else None
    except (OSError, ValueError, KeyError, http.client.HTTPException):
        return None


class Collector:
    """Client side of the collector process (bench_cycle.py --collector)."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/events"

    def _call(self, method: str, path: str):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request(method, path)
            r = c.getresponse()
            return json.loads(r.read() or b"null")
        finally:
            c.close()

    def log(self) -> list[dict]:
        return self._call("GET", "/_log")

    def count(self) -> int:
        return self._call("GET", "/_count")["n"]

    def reset(self) -> None:
        self._call("POST", "/_reset")


def collector_main(port_file: str) -> int:
    """The event collector: answers 202 at once, keeps what it got in memory."""
    lock = threading.Lock()
    events: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real coordinator

        def log_message(self, *args):
            pass

        def _answer(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            t = time.monotonic()
            if self.path == "/_reset":
                with lock:
                    events.clear()
                self._answer(200, b"{}")
                return
            try:
                doc = json.loads(body)
                data = doc.get("data") or {}
                entry = {"t": t, "id": doc.get("id"), "type": doc.get("type"),
                         "to_version": data.get("to_version")}
            except ValueError:
                entry = {"t": t, "id": None, "type": None, "to_version": None}
            with lock:
                events.append(entry)
            self._answer(202)

        def do_GET(self):
            with lock:
                if self.path == "/_count":
                    body = json.dumps({"n": len(events)}).encode()
                else:
                    body = json.dumps(events).encode()
            self._answer(200, body)

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 128

    srv = Server(("127.0.0.1", 0), Handler)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{srv.server_address[1]}\n")
    os.replace(tmp, port_file)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    srv.serve_forever(poll_interval=0.5)
    return 0


# ---------------------------------------------------------------------------
# Watchers


class DirWatch:
    """inotify on one folder (libc through ctypes): the CLOCK_MONOTONIC time
    each name appeared (renamed in, or closed after writing). With
    read_json, the file is read at once (it may be gone by then)."""

    def __init__(self, path: Path, mask=IN_MOVED_TO, read_json=False):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.path = path
        self.fd = libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
        if self.fd < 0:
            die(f"inotify_init1: {os.strerror(ctypes.get_errno())}")
        if libc.inotify_add_watch(self.fd, os.fsencode(path), mask) < 0:
            die(f"inotify_add_watch {path}: {os.strerror(ctypes.get_errno())}")
        self.read_json = read_json
        self.events: list[tuple[float, str, dict | None]] = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if not r:
                continue
            t = time.monotonic()
            try:
                buf = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                continue
            off = 0
            while off + 16 <= len(buf):
                _wd, _mask, _cookie, n = struct.unpack_from("iIII", buf, off)
                name = buf[off + 16:off + 16 + n].rstrip(b"\0").decode()
                off += 16 + n
                doc = None
                if self.read_json and name.endswith(".json") and not name.startswith("."):
                    try:
                        doc = json.loads((self.path / name).read_bytes())
                    except (OSError, ValueError):
                        doc = None
                with self.lock:
                    self.events.append((t, name, doc))

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def close(self):
        self.stopping = True
        self.thread.join()
        os.close(self.fd)


class VersionProber:
    """GET /api/v1/version every PROBE_PERIOD on a fresh connection; records
    (time the answer arrived, version or None)."""

    def __init__(self, port: int):
        self.port = port
        self.samples: list[tuple[float, float, str | None]] = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        nxt = time.monotonic()
        while not self.stopping:
            sent = time.monotonic()
            v = served_version(self.port, timeout=3.0)
            self.samples.append((sent, time.monotonic(), v))
            nxt += PROBE_PERIOD
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                nxt = time.monotonic()

    def close(self):
        self.stopping = True
        self.thread.join()


class ClientLoop:
    """Many short connections to the service (GET /api/v1/version, HTTP/1.0:
    it answers 200 in every version, also in those whose /health fails),
    about CLIENT_RATE a second from CLIENT_THREADS threads; counts the
    outcomes."""

    def __init__(self, port: int):
        self.port = port
        self.counts: dict[str, int] = {}
        self.refused_at: list[float] = []
        self.lock = threading.Lock()
        self.stopping = False
        self.started = time.monotonic()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(CLIENT_THREADS)]
        for t in self.threads:
            t.start()

    def _attempt(self) -> str:
        s = socket.socket()
        s.settimeout(5.0)
        try:
            try:
                s.connect(("127.0.0.1", self.port))
            except ConnectionRefusedError:
                return "refused"
            except socket.timeout:
                return "connect timeout"
            except OSError as e:
                return f"connect {e.strerror}"
            try:
                s.sendall(b"GET /api/v1/version HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except socket.timeout:
                return "answer timeout"
            except ConnectionResetError:
                return "reset"
            except OSError as e:
                return f"io {e.strerror}"
            if data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n", 1)[0]:
                return "ok"
            if data.startswith(b"HTTP/1."):
                return "http error"
            return "closed unanswered"
        finally:
            s.close()

    def _run(self, i: int):
        period = CLIENT_THREADS / CLIENT_RATE
        nxt = time.monotonic() + i * period / CLIENT_THREADS
        while not self.stopping:
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t = time.monotonic()
            outcome = self._attempt()
            with self.lock:
                self.counts[outcome] = self.counts.get(outcome, 0) + 1
                if outcome == "refused":
                    self.refused_at.append(t)
            nxt += period
            if nxt < time.monotonic() - period:
                nxt = time.monotonic()  # behind after a long wait: no burst

    def close(self) -> float:
        self.stopping = True
        for t in self.threads:
            t.join()
        return time.monotonic() - self.started


# ---------------------------------------------------------------------------
# /proc


def proc_cpu_ticks(pid: int) -> int:
    """utime + stime of the whole process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def proc_threads(pid: int) -> dict[int, dict]:
    """Per thread: name, CPU time in ns and scheduler runs (schedstat), and
    context switches (voluntary + involuntary)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{base}/schedstat") as f:
                run_ns, _wait, slices = (int(x) for x in f.read().split())
            with open(f"{base}/comm") as f:
                comm = f.read().strip()
            sw = 0
            with open(f"{base}/status") as f:
                for line in f:
                    if "ctxt_switches:" in line:
                        sw += int(line.split()[1])
        except (OSError, ValueError):
            continue
        out[int(tid)] = {"comm": comm, "ns": run_ns, "slices": slices, "switches": sw}
    return out


def threads_delta(before: dict, after: dict) -> dict[int, dict]:
    d = {}
    for tid, a in after.items():
        b = before.get(tid, {"ns": 0, "slices": 0, "switches": 0})
        d[tid] = {"comm": a["comm"], "ns": a["ns"] - b["ns"],
                  "slices": a["slices"] - b["slices"],
                  "switches": a["switches"] - b["switches"]}
    return d


def smaps_by_file(pid: int) -> tuple[dict[str, int], int]:
    """Resident KiB by mapped file ("[heap]", "[anon]", ...) and the Pss."""
    by, cur, pss = {}, "[anon]", 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if not parts[0].endswith(":"):
                cur = parts[5] if len(parts) > 5 else "[anon]"
            elif parts[0] == "Rss:":
                by[cur] = by.get(cur, 0) + int(parts[1])
            elif parts[0] == "Pss:":
                pss += int(parts[1])
    return by, pss


def proc_mem_kib(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(line.split()[1])
    return out


# ---------------------------------------------------------------------------
# Context


@dataclass
class Ctx:
    args: argparse.Namespace
    work: Path
    procs: Procs
    slotctl: Path
    slotd: Path
    rows: list[Row] = field(default_factory=list)
    key_sec: Path = Path()
    trust: Path = Path()
    box: Path | None = None
    bus: str = ""
    nginx: subprocess.Popen | None = None
    nginx_dir: Path = Path()
    ca: Path = Path()
    big_port: int = 0
    small_port: int = 0
    closing_port: int = 0  # www-small again, closing each connection after one request
    collector: Collector | None = None
    # Figures one section hands to another.
    restart_s: float = 0.0
    start_s: float = 0.0

    def row(self, *a, **kw) -> Row:
        r = Row(*a, **kw)
        self.rows.append(r)
        return r


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_keys(ctx: Ctx) -> None:
    keys = ctx.work / "keys"
    keys.mkdir()
    run([SLOT_KEYGEN, keys / "release"])
    ctx.key_sec = keys / "release.key"
    ctx.trust = ctx.work / "trust"
    ctx.trust.mkdir()
    shutil.copy(keys / "release.pub", ctx.trust / "release.pub")


def slot_package(ctx: Ctx, name: str, version: str, src: Path, outdir: Path) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    out = run([SLOT_PACKAGE, "-n", name, "-v", version, "-k", ctx.key_sec, "-o", outdir, src],
              env=dict(os.environ, TMPDIR=str(ctx.work))).stdout
    return Path(out.strip().splitlines()[-1])


def store_conf(ctx: Ctx, store: Path, compatible: str, extra: str = "") -> str:
    # hooks_dir names a folder that does not exist: hooks installed on this
    # machine take no part.
    return f"""[agent]
worker_id = bench
state_dir = {store}/state
hooks_dir = {store}/no-hooks
[slots]
root = {store}/root
compatible = {compatible}
max_unpacked_size = 4G
min_free_space = 64M
[trust]
keys = {ctx.trust}
allow_downgrade = yes
{extra}"""


def slotctl(ctx: Ctx, conf: Path, *args, env=None) -> Timed:
    return run_timed([ctx.slotctl, "-q", "-c", conf, *args], env=env)


# ---------------------------------------------------------------------------
# Sections 1 and 2: under a real systemd


@dataclass
class SvcSetup:
    store: Path
    port: int
    pkgs: dict[str, Path]
    conf: dict[str, Path]
    env: dict[str, str]


def svc_setup(ctx: Ctx) -> SvcSetup:
    store = ctx.work / "svc"
    port = free_port()
    pkgs = {}
    for version, behaviour in [("1.0.0", "healthy"), ("1.1.0", "healthy"),
                               ("1.2.0", "health-500"), ("1.3.0", "healthy"),
                               ("1.4.0", "health-500"), ("1.5.0", "healthy"),
                               ("1.6.0", "health-500")]:
        src = ctx.work / "src" / version
        src.mkdir(parents=True)
        shutil.copy(DEMO_APP, src / "demo-app.py")
        write(src / "app.ini", f"version = {version}\nbehaviour = {behaviour}\nport = {port}\n")
        pkgs[version] = slot_package(ctx, "demo-app", version, src, ctx.work / "pkgs-demo")

    def health(unit: str, timeout: float) -> str:
        return f"""[service]
unit = {unit}
restart_timeout = 20s
[health]
url = http://127.0.0.1:{port}/health
version_url = http://127.0.0.1:{port}/api/v1/version
interval = {int(HEALTH_INTERVAL * 1000)}ms
successes = {HEALTH_SUCCESSES}
timeout = {timeout:g}s
[rollback]
timeout = 10s
"""
    conf = {
        "plain": write(store / "plain.conf", store_conf(ctx, store, "demo-app")),
        "sock": write(store / "sock.conf",
                      store_conf(ctx, store, "demo-app", health("demo.service", 20))),
        "sock-revert": write(store / "sock-revert.conf",
                             store_conf(ctx, store, "demo-app",
                                        health("demo.service", REVERT_TIMEOUT))),
        "own": write(store / "own.conf",
                     store_conf(ctx, store, "demo-app", health("demo-own.service", 20))),
        "own-revert": write(store / "own-revert.conf",
                            store_conf(ctx, store, "demo-app",
                                       health("demo-own.service", REVERT_TIMEOUT))),
    }
    # Both slots filled, 1.1.0 active in slot b, before systemd sees it.
    for v in ("1.0.0", "1.1.0"):
        r = slotctl(ctx, conf["plain"], "install", pkgs[v])
        if r.rc != 0:
            die(f"slotctl install {pkgs[v].name}: {r.err.strip()}")

    units = ctx.work / "units"
    write(units / "demo.socket", f"[Socket]\nListenStream=127.0.0.1:{port}\n")
    write(units / "demo.service", f"""[Unit]
Description=demo service behind demo.socket
Requires=demo.socket
After=demo.socket
StartLimitIntervalSec=0

[Service]
Type=notify
ExecStart={store}/root/current/demo-app.py
""")
    write(units / "demo-own.service", f"""[Unit]
Description=demo service binding its own port
StartLimitIntervalSec=0

[Service]
Type=notify
ExecStart={store}/root/current/demo-app.py
""")
    ctx.box = ctx.work / "box"
    say("  booting systemd in private namespaces (sdbox.sh)")
    run([SDBOX, "start", ctx.box, units, ctx.work], timeout=60)
    ctx.bus = run([SDBOX, "bus", ctx.box]).stdout.strip()
    box_exec(ctx, "systemctl", "start", "demo.socket", "demo.service")
    wait_for("demo.service to answer", lambda: served_version(port) == "1.1.0", 10)
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=ctx.bus)
    return SvcSetup(store, port, pkgs, conf, env)


def box_exec(ctx: Ctx, *argv) -> Timed:
    r = run_timed([SDBOX, "exec", ctx.box, *argv], timeout=60)
    if r.rc != 0 and argv[:2] != ("systemctl", "is-active"):
        die(f"sdbox exec {' '.join(argv)}: exit {r.rc}: {r.err.strip()}")
    return r


def active_slot(store: Path) -> str:
    return os.readlink(store / "root" / "current").rsplit("/", 1)[-1]


def bench_restart(ctx: Ctx, s: SvcSetup) -> None:
    say("== 1. restart and verification (real systemd, demo.service behind demo.socket)")
    # Reaching the box (sdbox.sh, nsenter, systemctl's own start and bus
    # connection) costs as much as a cheap systemctl call: measured with
    # is-active and taken off the restart and start times.
    over = [box_exec(ctx, "systemctl", "is-active", "demo.service").wall
            for _ in range(RESTART_RUNS)]
    restart = []
    for _ in range(RESTART_RUNS):
        restart.append(box_exec(ctx, "systemctl", "restart", "demo.service").wall)
        if served_version(s.port) != "1.1.0":
            die("demo.service does not answer after systemctl restart")
    start = []
    for _ in range(RESTART_RUNS):
        box_exec(ctx, "systemctl", "stop", "demo.service")
        start.append(box_exec(ctx, "systemctl", "start", "demo.service").wall)
    overhead = med(over)
    ctx.restart_s = max(0.0, med(restart) - overhead)
    ctx.start_s = max(0.0, med(start) - overhead)
    say(f"  reaching the box (systemctl is-active): {spread(over)}")
    say(f"  systemctl restart demo.service: {spread(restart)} -> {secs(ctx.restart_s)} net")
    say(f"  systemctl start demo.service:   {spread(start)} -> {secs(ctx.start_s)} net")
    ctx.row("1 restart", "baseline: systemctl restart (net)", secs(ctx.restart_s),
            target="(baseline)")
    ctx.row("1 restart", "baseline: systemctl start (net)", secs(ctx.start_s),
            target="(baseline)")

    # slotctl switch, alternating a/b.
    ideal = ctx.restart_s + (HEALTH_SUCCESSES - 1) * HEALTH_INTERVAL
    # A probe loop beside slotctl tells when the new version first answered:
    # from then on, n successes spaced by [health] interval cannot take less
    # than (n-1) x interval.
    spacing = (HEALTH_SUCCESSES - 1) * HEALTH_INTERVAL
    walls, excess, swap_to_end, answer_to_end = [], [], [], []
    watch = DirWatch(s.store / "root", IN_MOVED_TO)
    try:
        for i in range(SWITCH_RUNS):
            to = "a" if active_slot(s.store) == "b" else "b"
            expected = "1.0.0" if to == "a" else "1.1.0"
            n0 = len(watch.snapshot())
            prober = VersionProber(s.port)
            time.sleep(0.1)
            try:
                r = slotctl(ctx, s.conf["sock"], "switch", to, env=s.env)
            finally:
                prober.close()
            if r.rc != 0:
                die(f"slotctl switch {to}: exit {r.rc}: {r.err.strip()}")
            swaps = [t for t, name, _ in watch.snapshot()[n0:] if name == "current"]
            if not swaps or served_version(s.port) != expected:
                die(f"slotctl switch {to}: no swap seen or {expected} not served")
            first = next((got for _, got, v in prober.samples
                          if v == expected and got > swaps[0]), r.end)
            walls.append(r.wall)
            swap_to_end.append(r.end - swaps[0])
            answer_to_end.append(r.end - first)
            excess.append(r.end - swaps[0] - ideal)
            say(f"  switch {to}: wall {secs(r.wall)}, swap->verified {secs(r.end - swaps[0])} "
                f"(beyond restart + {HEALTH_SUCCESSES - 1} x interval: {ms(excess[-1])}); "
                f"first answer of {expected} at +{secs(first - swaps[0])} after the swap, "
                f"verified {secs(r.end - first)} later")
    finally:
        watch.close()
    say(f"  slotctl switch wall {spread(walls)}; swap->verified {spread(swap_to_end)}")
    ctx.row("1 restart", "slotctl switch wall (median of 5)", secs(med(walls)),
            f"{secs(ideal)} restart+(n-1)*intv", f"{med(walls) / ideal:.2f}", "(information)")
    ctx.row("1 restart", "swap->verified - (restart + (n-1)*interval)",
            ms(med(excess)), f"{secs(ideal)} restart+(n-1)*intv",
            f"{med(swap_to_end) / ideal:.2f}", f"< interval = {ms(HEALTH_INTERVAL)}",
            med(excess) < HEALTH_INTERVAL)
    ctx.row("1 restart", "first new answer -> verified (n successes)",
            secs(med(answer_to_end)), f"{secs(spacing)} (n-1)*intv",
            f"{med(answer_to_end) / spacing:.2f}", f">= (n-1)*interval = {secs(spacing)}",
            med(answer_to_end) >= spacing - 0.05)
    if med(answer_to_end) < spacing - 0.05:
        say(f"  NOTE: slotctl verified {secs(med(answer_to_end))} after the new version first "
            f"answered, less than the {secs(spacing)} that {HEALTH_SUCCESSES} successes "
            f"{ms(HEALTH_INTERVAL)} apart take: the successes are not spaced by "
            "[health] interval")

    # The revert of a package whose /health answers 500.
    old = "1.0.0" if active_slot(s.store) == "a" else "1.1.0"
    watch = DirWatch(s.store / "root", IN_MOVED_TO)
    prober = VersionProber(s.port)
    time.sleep(0.2)
    try:
        r = slotctl(ctx, s.conf["sock-revert"], "install", s.pkgs["1.2.0"], env=s.env)
        time.sleep(0.3)
    finally:
        prober.close()
        watch.close()
    if r.rc != 1:
        die(f"slotctl install of the failing 1.2.0 exited {r.rc}, not 1: {r.err.strip()}")
    if served_version(s.port) != old:
        die(f"after the revert {old} is not served")
    swaps = [t for t, name, _ in watch.snapshot() if name == "current"]
    new_first = next((got for _, got, v in prober.samples if v == "1.2.0"), None)
    old_again = next((got for _, got, v in prober.samples
                      if new_first is not None and got > new_first and v == old), None)
    if new_first is None or old_again is None or len(swaps) < 2:
        die("the revert was not seen by the probe loop (no 1.2.0 answer, or no old answer "
            "after it)")
    gaps = [b[1] - a[1] for a, b in zip(prober.samples, prober.samples[1:])]
    target = HEALTH_INTERVAL + ctx.start_s
    say(f"  revert: slotctl {secs(r.wall)} (exit 1); probes {len(prober.samples)}, "
        f"largest gap between answers {ms(max(gaps))}")
    say(f"  swap at +{secs(swaps[0] - r.start)}, 1.2.0 first answered at "
        f"+{secs(new_first - r.start)}, swap back at +{secs(swaps[1] - r.start)}, "
        f"{old} answered again at +{secs(old_again - r.start)}, slotctl ended at "
        f"+{secs(r.end - r.start)}")
    # The deadline estimated from outside (the new version's first answer
    # taken as the start of the trial) and as slotd computes it (the trial
    # starts at the swap, before the restart): the second is earlier, so its
    # figures are the larger.
    for label, t0 in (("1st new answer", new_first), ("swap", swaps[0])):
        deadline = t0 + REVERT_TIMEOUT
        x, y = old_again - deadline, r.end - deadline
        say(f"  deadline = {label} + {REVERT_TIMEOUT:g} s: old version served again "
            f"{secs(x)} after it, revert verified {secs(y)} after it")
        when = f"({label}+{REVERT_TIMEOUT:g}s)"
        ctx.row("1 restart", f"revert: old served again after deadline {when}",
                secs(x), f"{secs(ctx.start_s)} start", f"{x / target:.2f}",
                f"< interval + start = {secs(target)}", x < target)
        bound = target + (HEALTH_SUCCESSES - 1) * HEALTH_INTERVAL
        ctx.row("1 restart", f"revert: verified after deadline {when}", secs(y),
                f"{secs(ctx.start_s)} start", f"{y / bound:.2f}",
                f"< intv + start + (n-1)*intv = {secs(bound)}", y < bound)


def bench_refused(ctx: Ctx, s: SvcSetup) -> None:
    say("== 2. refused connections during an update and a revert")

    def measure(conf: str, version: str, want_rc: int, what: str) -> ClientLoop:
        loop = ClientLoop(s.port)
        time.sleep(0.5)
        r = slotctl(ctx, s.conf[conf], "install", s.pkgs[version], env=s.env)
        time.sleep(0.5)
        duration = loop.close()
        if r.rc != want_rc:
            die(f"slotctl install {version} ({what}) exited {r.rc}, not {want_rc}: "
                f"{r.err.strip()}")
        total = sum(loop.counts.values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(loop.counts.items()))
        say(f"  {what}: {total} connections in {duration:.1f} s ({total / duration:.0f}/s): "
            f"{detail}")
        loop.total = total
        return loop

    sock_up = measure("sock", "1.3.0", 0, "socket unit, update 1.3.0")
    sock_rv = measure("sock-revert", "1.4.0", 1, "socket unit, revert of 1.4.0")
    box_exec(ctx, "systemctl", "stop", "demo.service", "demo.socket")
    box_exec(ctx, "systemctl", "start", "demo-own.service")
    wait_for("demo-own.service to answer", lambda: served_version(s.port) == "1.3.0", 10)
    own_up = measure("own", "1.5.0", 0, "own port, update 1.5.0")
    own_rv = measure("own-revert", "1.6.0", 1, "own port, revert of 1.6.0")
    box_exec(ctx, "systemctl", "stop", "demo-own.service")

    for what, sock, own in (("update", sock_up, own_up), ("revert", sock_rv, own_rv)):
        ref_s, ref_o = sock.counts.get("refused", 0), own.counts.get("refused", 0)
        other = sum(v for k, v in sock.counts.items() if k not in ("ok", "refused"))
        ctx.row("2 refused", f"ECONNREFUSED during {what}, socket unit",
                f"{ref_s} of {sock.total}" + (f" (+{other} other failures)" if other else ""),
                f"{ref_o} of {own.total} own port", "-", "0", ref_s == 0)
        say(f"  {what}: refused behind the socket unit {ref_s} of {sock.total}, with its own "
            f"port {ref_o} of {own.total}")


def bench_idle_service(ctx: Ctx, s: SvcSetup) -> None:
    """slotd as a worker runs it: polling the coordinator over TLS every
    second (304s), watching demo.service in the box every second (unit
    state over the bus, health URL, version URL), its listener on."""
    say("== 4. idle daemon with a managed unit (under the real systemd)")
    st = json.loads(run([ctx.slotctl, "--json", "-c", s.conf["sock"], "status"],
                        env=s.env).stdout)
    active = st["slots"][st["active_slot"]]["version"]
    publish(ctx, "www-big", s.pkgs[active])  # up to date: nothing to install
    # The refused-connections section leaves demo.service stopped.
    box_exec(ctx, "systemctl", "start", "demo.socket", "demo.service")
    wait_for("demo.service to answer", lambda: served_version(s.port) == active, 10)
    conf = write(s.store / "idle-service.conf", s.conf["sock"].read_text() + f"""
[coordinator]
manifest_url = https://127.0.0.1:{ctx.big_port}/manifest
ca_file = {ctx.ca}
[trigger]
listen = 127.0.0.1:{free_port()}
[agent]
check_interval = 1s
check_splay = 0
[health]
monitor_interval = 1s
""")
    log_path = s.store / "slotd-idle.log"
    env = {k: v for k, v in s.env.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    with open(log_path, "ab") as log:
        p = ctx.procs.start([ctx.slotd, "-c", conf], stdout=log, stderr=log, env=env)
    time.sleep(3.0)  # the first poll and check, then the trim a second later
    n0 = len(access_log_lines(ctx))
    ticks0 = proc_cpu_ticks(p.pid)
    time.sleep(15.0)
    ticks1 = proc_cpu_ticks(p.pid)
    if p.poll() is not None:
        die(f"slotd exited with {p.returncode}: {log_path.read_text()[-600:]}")
    polls = [ln for ln in access_log_lines(ctx)[n0:] if ln.startswith('"GET /manifest ')
             and f" {ctx.big_port} " in ln]
    mem = proc_mem_kib(p.pid)
    maps, pss = smaps_by_file(p.pid)
    ctx.procs.stop(p)
    complaints = [ln for ln in log_path.read_text().splitlines()
                  if re.search(r"error|warning|drift|not active|health", ln, re.I)]
    if not polls or complaints:
        die("the monitored daemon was not idle and healthy: "
            f"{len(polls)} polls; {' / '.join(complaints[-3:])}")
    rss = mem["VmRSS"] * 1024 / 1e6
    top = sorted(maps.items(), key=lambda kv: -kv[1])[:6]
    say(f"  {len(polls)} polls (HTTP {', '.join(sorted({ln.split()[3] for ln in polls}))}) and "
        f"as many unit checks in 15 s: {ticks1 - ticks0} ticks of CPU")
    say(f"  memory: VmRSS {rss:.1f} MB (anon {mem['RssAnon'] * 1024 / 1e6:.1f}, file "
        f"{mem['RssFile'] * 1024 / 1e6:.1f}), VmHWM {mem['VmHWM'] * 1024 / 1e6:.1f} MB, "
        f"Pss {pss * 1024 / 1e6:.1f} MB; largest: "
        + ", ".join(f"{os.path.basename(k)} {v * 1024 / 1e6:.1f}" for k, v in top) + " MB")
    ctx.row("4 idle", "VmRSS while idle, polling and monitoring a unit", f"{rss:.1f} MB", "-",
            "-", f"< {RSS_TARGET_MB:g} MB", rss < RSS_TARGET_MB)


# ---------------------------------------------------------------------------
# Coordinator (nginx) and section 3


def make_pki(ctx: Ctx) -> None:
    d = ctx.work / "tls"
    d.mkdir()
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", d / "ca.key", "-out", d / "ca.pem", "-days", "2",
         "-subj", "/CN=slotd bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", d / "server.key", "-subj", "/CN=127.0.0.1", "-out",
         d / "server.csr"])
    write(d / "server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                            "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    run(["openssl", "x509", "-req", "-in", d / "server.csr", "-CA", d / "ca.pem", "-CAkey",
         d / "ca.key", "-set_serial", str(random.randrange(1, 1 << 62)), "-days", "2",
         "-extfile", d / "server.ext", "-out", d / "server.pem"])
    ctx.ca = d / "ca.pem"


def start_nginx(ctx: Ctx) -> None:
    """nginx in the foreground without a master process (its PID is ours):
    HTTPS on two ports, one serving the large package's folder and one the
    small one's, each SERVE_DIR/current as published by slot-publish."""
    make_pki(ctx)
    d = ctx.nginx_dir = ctx.work / "nginx"
    (d / "tmp").mkdir(parents=True)
    for serve in ("www-big", "www-small"):
        (ctx.work / serve).mkdir()
    ctx.big_port, ctx.small_port, ctx.closing_port = free_port(), free_port(), free_port()
    tls = ctx.work / "tls"
    servers = ""
    for port, serve, keepalive in ((ctx.big_port, "www-big", "75s"),
                                   (ctx.small_port, "www-small", "75s"),
                                   (ctx.closing_port, "www-small", "0")):
        servers += f"""
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {tls}/server.pem;
        ssl_certificate_key {tls}/server.key;
        keepalive_timeout {keepalive};
        root {ctx.work}/{serve}/current;
        location = /manifest {{ default_type application/json; }}
    }}"""
    write(d / "nginx.conf", f"""user root;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
    log_format bench '"$request" $status $server_port conn=$connection req=$connection_requests';
    access_log {d}/access.log bench;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    types {{ application/json json; }}
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 100000;
{servers}
}}
""")
    ctx.nginx = ctx.procs.start(["nginx", "-p", d, "-c", d / "nginx.conf", "-e",
                                 d / "error.log", "-g", "daemon off;"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for("nginx", lambda: ctx.nginx.poll() is not None or
             all(listening(p) for p in (ctx.big_port, ctx.small_port, ctx.closing_port)), 5)
    if ctx.nginx.poll() is not None:
        die(f"nginx did not start: {(d / 'error.log').read_text()[-500:]}")


def publish(ctx: Ctx, serve: str, pkg: Path, downgrade=False) -> None:
    run([SLOT_PUBLISH, "-k", ctx.key_sec, "-d", ctx.work / serve,
         *(["--downgrade"] if downgrade else []), pkg])


def make_big_package(ctx: Ctx, version: str, seed: int, layout, pool) -> Path:
    """The package as slot-package makes it (slot.ini first, then the tree
    by name, owner 0:0, zstd, minisign), streamed straight from memory into
    zstd: the tree never touches the disk."""
    outdir = ctx.work / "pkgs-big"
    outdir.mkdir(exist_ok=True)
    pkg = outdir / f"{BIG_NAME}-{version}.tar.zst"
    rng = random.Random(seed)
    mtime = 1767225600

    def info(name: str, size: int = 0, kind=tarfile.REGTYPE) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.size, ti.type, ti.mtime = size, kind, mtime
        ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        return ti

    with open(pkg, "wb") as out:
        z = subprocess.Popen(["zstd", "-q", "-T0", "-c"], stdin=subprocess.PIPE, stdout=out)
        with tarfile.open(fileobj=z.stdin, mode="w|", format=tarfile.GNU_FORMAT) as tf:
            ini = f"[package]\nname = {BIG_NAME}\nversion = {version}\n".encode()
            tf.addfile(info("slot.ini", len(ini)), io.BytesIO(ini))
            made = set()
            for rel, size in layout:
                parts = rel.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    d = "/".join(parts[:i])
                    if d not in made:
                        made.add(d)
                        tf.addfile(info(d, kind=tarfile.DIRTYPE))
                tf.addfile(info(rel, size), io.BytesIO(file_content(rng, size, pool)))
        z.stdin.close()
        if z.wait() != 0:
            die(f"zstd failed for {pkg}")
    run(["minisign", "-S", "-s", ctx.key_sec, "-m", pkg])
    return pkg


def settle_trash(slots: Path, timeout=300.0, settle=0.0) -> None:
    """Waits until slotctl's background reaper has deleted the old trees
    (ROOT/slots/.trash-*), then syncs: no timed run pays for another's
    deletions or writeback. Then waits `settle` seconds more (--settle)."""
    deadline = time.monotonic() + timeout
    while slots.is_dir() and any(n.startswith(".trash-") for n in os.listdir(slots)):
        if time.monotonic() > deadline:
            die(f"{slots}/.trash-* still there after {timeout:.0f} s")
        time.sleep(0.02)
    os.sync()
    if settle > 0:
        time.sleep(settle)


def bench_download(ctx: Ctx) -> None:
    a = ctx.args
    say(f"== 3. download and install from nginx ({a.size_mb:g} MB, {a.files} files, zstd, "
        "HTTPS on loopback)")
    t0 = time.monotonic()
    layout = sorted(make_layout(a.seed, a.files, int(a.size_mb * 1e6)).files)
    pool = make_text_pool(a.seed)
    pkgs = {v: make_big_package(ctx, v, a.seed * 1000 + i + 1, layout, pool)
            for i, v in enumerate(BIG_VERSIONS)}
    total = sum(size for _, size in layout)
    say(f"  generated {len(BIG_VERSIONS)} versions in {time.monotonic() - t0:.1f} s: "
        + ", ".join(f"{p.name} {p.stat().st_size / 1e6:.0f} MB" for p in pkgs.values())
        + f" (tree {total / 1e6:.0f} MB, {len(layout)} files)")

    fs = run(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", ctx.work], check=False).stdout.split()
    journals = os.listdir("/proc/fs/jbd2") if os.path.isdir("/proc/fs/jbd2") else []
    if len(fs) == 2 and fs[0] == "ext4" and not any(
            j.startswith(os.path.basename(fs[1]) + "-") for j in journals):
        say(f"  NOTE: {fs[1]} is ext4 without a journal: creating files soon after a large "
            "deletion pays recently_deleted() in the kernel, for both sides, unequally; "
            "figures vary from run to run (--settle 65 waits that out)")
    store = ctx.work / "big"
    conf = write(store / "slotd.conf", store_conf(ctx, store, BIG_NAME, f"""[coordinator]
manifest_url = https://127.0.0.1:{ctx.big_port}/manifest
ca_file = {ctx.ca}
"""))
    slots = store / "root" / "slots"

    downloads = []

    def update(version: str, timed=True) -> Timed:
        settle_trash(slots, settle=a.settle if timed else 0)
        (store / "state" / "download").mkdir(parents=True, exist_ok=True)
        watch = DirWatch(store / "state" / "download", IN_MOVED_TO)
        try:
            r = slotctl(ctx, conf, "update")
        finally:
            watch.close()
        done = [t for t, name, _ in watch.snapshot() if name.endswith(".pkg")]
        downloads.append(done[0] - r.start if done else float("nan"))
        if r.rc != 0:
            die(f"slotctl update to {version}: exit {r.rc}: {r.err.strip()}")
        ini = (store / "root" / "current" / "slot.ini").read_text()
        if f"version = {version}\n" not in ini:
            die(f"after slotctl update, current is not {version}")
        return r

    def baseline(version: str, dest: Path) -> Timed:
        dest.mkdir()
        settle_trash(slots, settle=a.settle)
        url = f"https://127.0.0.1:{ctx.big_port}/packages/{pkgs[version].name}"
        r = run_timed(["bash", "-c", 'set -o pipefail; curl -sS --fail --cacert "$1" "$2" | '
                       'tar --zstd -x -C "$3" && sync', "baseline", ctx.ca, url, dest])
        if r.rc != 0:
            die(f"curl | tar failed: {r.err.strip()}")
        return r

    # The steady state: both slots hold a version of the same size. Both
    # sides fetch the package the coordinator offers at the time.
    for version in BIG_VERSIONS:
        publish(ctx, "www-big", pkgs[version])
        update(version, timed=False)
    outs = [store / "tar-warm"]
    baseline(BIG_VERSIONS[1], outs[-1])
    s_runs, t_runs = [], []
    active = BIG_VERSIONS[1]
    for i in range(a.rounds):
        version = BIG_VERSIONS[i % 2]
        outs.append(store / f"tar-{i}")
        publish(ctx, "www-big", pkgs[version], downgrade=version < active)

        def do_slotctl():
            s_runs.append(update(version))

        def do_tar():
            t_runs.append(baseline(version, outs[-1]))
            shutil.rmtree(outs[-2])  # as the reaper deletes slotctl's old tree
        for step in ((do_slotctl, do_tar) if i % 2 == 0 else (do_tar, do_slotctl)):
            step()
        active = version
        s, t = s_runs[-1], t_runs[-1]
        say(f"  round {i + 1}/{a.rounds} ({version}): slotctl update {secs(s.wall)} "
            f"(download and fsync done at +{secs(downloads[-1])}; cpu {s.user:.2f}+"
            f"{s.system:.2f} s), curl | tar + sync {secs(t.wall)} (cpu {t.user:.2f}+"
            f"{t.system:.2f} s), ratio {s.wall / t.wall:.2f}")
    shutil.rmtree(outs[-1])
    settle_trash(slots)
    s_med, t_med = med(r.wall for r in s_runs), med(r.wall for r in t_runs)
    per_round = [x.wall / y.wall for x, y in zip(s_runs, t_runs)]
    timed_downloads = downloads[-a.rounds:]
    say(f"  slotctl update {spread([r.wall for r in s_runs])}, of which the download (to its "
        f"fsync and rename) {spread(timed_downloads)}; curl | tar + sync "
        f"{spread([r.wall for r in t_runs])}; ratio per round "
        f"{min(per_round):.2f}..{max(per_round):.2f}")
    ctx.row("3 download", "  of which: download + fsync before unpacking",
            secs(med(timed_downloads)), "-", "-", "(information)")
    ctx.row("3 download", f"slotctl update {total / 1e6:.0f} MB/{len(layout)} files "
            f"(median of {a.rounds})", secs(s_med), f"{secs(t_med)} curl|tar+sync",
            f"{s_med / t_med:.2f}", f"ratio <= {DOWNLOAD_RATIO_TARGET}",
            s_med / t_med <= DOWNLOAD_RATIO_TARGET)


# ---------------------------------------------------------------------------
# Sections 4 and 5: the daemon


@dataclass
class Daemon:
    store: Path
    pkgs: dict[str, Path]
    token: str
    trigger_port: int
    template: dict
    conf_1s: Path = Path()
    conf_closing: Path = Path()
    conf_60s: Path = Path()
    proc: subprocess.Popen | None = None


def daemon_setup(ctx: Ctx) -> Daemon:
    store = ctx.work / "small"
    src = ctx.work / "src-small"
    write(src / "bin" / "app", "#!/bin/sh\necho cycle-small\n")
    pkgs = {v: slot_package(ctx, SMALL_NAME, v, src, ctx.work / "pkgs-small")
            for v in ["2.0.0"] + [f"2.0.{k}" for k in range(1, TRIGGER_RUNS + 1)]}
    token = base64.b64encode(os.urandom(24)).decode()
    write(store / "token", token + "\n")
    plain = write(store / "plain.conf", store_conf(ctx, store, SMALL_NAME))
    r = slotctl(ctx, plain, "install", pkgs["2.0.0"])
    if r.rc != 0:
        die(f"slotctl install {pkgs['2.0.0'].name}: {r.err.strip()}")
    # One real event emitted by slotctl is the template of the backlog.
    outbox = store / "state" / "outbox"
    template = None
    for name in sorted(os.listdir(outbox)):
        doc = json.loads((outbox / name).read_text())
        if doc.get("type") == "worker_update_completed":
            template = doc
        (outbox / name).unlink()
    if template is None:
        die("slotctl install emitted no worker_update_completed event")
    publish(ctx, "www-small", pkgs["2.0.0"])
    d = Daemon(store, pkgs, token, free_port(), template)

    def conf(name: str, interval: str) -> Path:
        return write(store / name, store_conf(ctx, store, SMALL_NAME, f"""[coordinator]
manifest_url = https://127.0.0.1:{ctx.small_port}/manifest
events_url = {ctx.collector.url}
ca_file = {ctx.ca}
[trigger]
listen = 127.0.0.1:{d.trigger_port}
token_file = {store}/token
[events]
spool_max = {2 * BACKLOG}
""").replace("[agent]\n", f"[agent]\ncheck_interval = {interval}\ncheck_splay = 0\n", 1))
    d.conf_1s, d.conf_60s = conf("poll-1s.conf", "1s"), conf("poll-60s.conf", "60s")
    d.conf_closing = write(store / "poll-closing.conf", d.conf_60s.read_text().replace(
        f"127.0.0.1:{ctx.small_port}/manifest", f"127.0.0.1:{ctx.closing_port}/manifest"))
    return d


def start_slotd(ctx: Ctx, d: Daemon, conf: Path) -> subprocess.Popen:
    log = open(d.store / "slotd.log", "ab")
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "DBUS_SYSTEM_BUS_ADDRESS", "WATCHDOG_USEC")}
    d.proc = ctx.procs.start([ctx.slotd, "-c", conf], stdout=log, stderr=log, env=env)
    log.close()

    def up():
        if d.proc.poll() is not None:
            die(f"slotd exited with {d.proc.returncode}: "
                f"{(d.store / 'slotd.log').read_text()[-600:]}")
        try:
            return http_get(d.trigger_port, "/health", 0.5)[0] == 200
        except OSError:
            return False
    wait_for("slotd's listener", up, 10)
    return d.proc


def stop_slotd(ctx: Ctx, d: Daemon) -> None:
    if d.proc:
        ctx.procs.stop(d.proc)
        d.proc = None


def access_log_lines(ctx: Ctx) -> list[str]:
    try:
        return (ctx.nginx_dir / "access.log").read_text().splitlines()
    except FileNotFoundError:
        return []


def bench_idle(ctx: Ctx, d: Daemon) -> None:
    say("== 4. idle daemon")
    # Baseline: one conditional GET by a fresh curl process, as a cron job
    # would poll: its CPU time (wait4).
    url = f"https://127.0.0.1:{ctx.small_port}/manifest"
    head = run(["curl", "-sS", "-D", "-", "-o", "/dev/null", "--cacert", ctx.ca, url]).stdout
    etag = re.search(r"(?im)^etag:\s*(\S+)", head).group(1)
    curl_cpu = []
    for _ in range(5):
        r = run_timed(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                       ctx.ca, "-H", f"If-None-Match: {etag}", url])
        if r.out.strip() != "304":
            die(f"conditional GET answered {r.out.strip()}, not 304")
        curl_cpu.append(r.user + r.system)
    curl_ms = med(curl_cpu) * 1e3
    say(f"  baseline: one `curl -H 'If-None-Match: ...'` process: cpu "
        f"{spread(curl_cpu, ms)}")

    p = start_slotd(ctx, d, d.conf_1s)
    time.sleep(2.5)  # the first poll (200, manifest cached), then 304s
    n0 = len(access_log_lines(ctx))
    ticks0, thr0 = proc_cpu_ticks(p.pid), proc_threads(p.pid)
    time.sleep(15.0)
    ticks1, thr1 = proc_cpu_ticks(p.pid), proc_threads(p.pid)
    lines = access_log_lines(ctx)[n0:]
    mem = proc_mem_kib(p.pid)
    polls = [ln for ln in lines if ln.startswith('"GET /manifest ')
             and f" {ctx.small_port} " in ln]
    status = sorted({ln.split()[3] for ln in polls})
    conns = {re.search(r"conn=(\d+)", ln).group(1) for ln in polls}
    if not polls:
        die("slotd did not poll in 15 s")
    cpu_ns = sum(t["ns"] for t in threads_delta(thr0, thr1).values())
    per_poll_ms = cpu_ns / 1e6 / len(polls)
    per_poll_ticks_ms = (ticks1 - ticks0) * 1000 / CLK_TCK / len(polls)
    say(f"  check_interval 1s: {len(polls)} polls in 15 s (HTTP {', '.join(status)}, over "
        f"{len(conns)} connection{'s' if len(conns) != 1 else ''}); CPU {cpu_ns / 1e6:.1f} ms "
        f"(schedstat) = {per_poll_ms:.2f} ms/poll; utime+stime {ticks1 - ticks0} ticks = "
        f"{per_poll_ticks_ms:.2f} ms/poll ({1000 / CLK_TCK:.0f} ms ticks)")
    ctx.row("4 idle", "CPU per 304 poll (schedstat, all threads)", f"{per_poll_ms:.2f} ms",
            f"{curl_ms:.2f} ms curl process", f"{per_poll_ms / curl_ms:.2f}",
            f"< {POLL_CPU_TARGET_MS:g} ms", per_poll_ms < POLL_CPU_TARGET_MS)
    ctx.row("4 idle", "CPU per 304 poll (utime+stime ticks)", f"{per_poll_ticks_ms:.2f} ms",
            f"{curl_ms:.2f} ms curl process", f"{per_poll_ticks_ms / curl_ms:.2f}",
            f"< {POLL_CPU_TARGET_MS:g} ms", per_poll_ticks_ms < POLL_CPU_TARGET_MS)
    rss, hwm = mem["VmRSS"] * 1024 / 1e6, mem["VmHWM"] * 1024 / 1e6
    maps, pss = smaps_by_file(p.pid)
    libs = [k for k in maps if ".so" in k]
    top = sorted(maps.items(), key=lambda kv: -kv[1])[:8]
    say(f"  memory: VmRSS {rss:.1f} MB (anon {mem['RssAnon'] * 1024 / 1e6:.1f}, file "
        f"{mem['RssFile'] * 1024 / 1e6:.1f}), VmHWM {hwm:.1f} MB, Pss {pss * 1024 / 1e6:.1f} MB; "
        f"{len(libs)} shared libraries mapped; largest: "
        + ", ".join(f"{os.path.basename(k)} {v * 1024 / 1e6:.1f}" for k, v in top) + " MB")
    ctx.row("4 idle", "VmRSS while idle", f"{rss:.1f} MB", "-", "-",
            f"< {RSS_TARGET_MB:g} MB", rss < RSS_TARGET_MB)
    ctx.row("4 idle", "VmHWM (peak: start-up and first poll)", f"{hwm:.1f} MB", "-", "-",
            "(information)")
    ctx.row("4 idle", "  of which anonymous (RssAnon)", f"{mem['RssAnon'] * 1024 / 1e6:.1f} MB",
            "-", "-", "(information)")
    stop_slotd(ctx, d)

    p = start_slotd(ctx, d, d.conf_60s)
    time.sleep(1.5)  # the first poll comes at once
    ticks0, thr0 = proc_cpu_ticks(p.pid), proc_threads(p.pid)
    time.sleep(IDLE_WINDOW)
    ticks1, thr1 = proc_cpu_ticks(p.pid), proc_threads(p.pid)
    delta = threads_delta(thr0, thr1)
    wakeups = sum(t["switches"] for t in delta.values())
    busy = [f"{t['comm']}[{tid}] {t['switches']} switches, {t['ns'] / 1e3:.0f} us"
            for tid, t in sorted(delta.items()) if t["switches"] or t["ns"]]
    say(f"  check_interval 60s, {IDLE_WINDOW:g} s idle: {ticks1 - ticks0} ticks, "
        f"{sum(t['ns'] for t in delta.values()) / 1e3:.0f} us CPU, {wakeups} context switches "
        f"over {len(delta)} threads" + (f" ({'; '.join(busy)})" if busy else ""))
    ctx.row("4 idle", f"CPU ticks in {IDLE_WINDOW:g} s idle (interval 60s)",
            str(ticks1 - ticks0), "-", "-", "0", ticks1 - ticks0 == 0)
    ctx.row("4 idle", f"wakeups in {IDLE_WINDOW:g} s idle (context switches)", str(wakeups),
            "-", "-", "(information)")

    # Wakeups by system call, all threads.
    trace = d.store / "strace.txt"
    st = ctx.procs.start(["strace", "-c", "-f", "-q", "-o", trace, "-p", str(p.pid)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(STRACE_WINDOW)
    ctx.procs.stop(st, signal.SIGINT)
    text = trace.read_text() if trace.exists() else ""
    m = re.search(r"^\S+\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?total$", text, re.M)
    calls = int(m.group(1)) if m else 0
    syscalls = [ln.split()[-1] + " " + ln.split()[3] for ln in text.splitlines()
                if re.match(r"^\s*\d+\.\d+\s", ln) and not ln.rstrip().endswith("total")]
    say(f"  strace -c -f for {STRACE_WINDOW:g} s: {calls} system calls"
        + (f" ({', '.join(syscalls)})" if syscalls else ""))
    ctx.row("4 idle", f"system calls in {STRACE_WINDOW:g} s idle (strace -c -f)", str(calls),
            "-", "-", "(information)")

    stop_slotd(ctx, d)

    # A coordinator that closes the connection after each request (or a
    # poll period past its keep-alive timeout): every poll is a new TLS
    # handshake, and slotd gives back the handshake's code after each.
    p = start_slotd(ctx, d, d.conf_closing)
    time.sleep(2.5)  # the first poll, then the release a second later
    n0 = len(access_log_lines(ctx))
    per_poll, rss_between = [], []
    for _ in range(5):
        thr0 = proc_threads(p.pid)
        os.kill(p.pid, signal.SIGUSR1)
        time.sleep(2.0)
        per_poll.append(sum(t["ns"] for t in threads_delta(thr0, proc_threads(p.pid)).values()))
        rss_between.append(proc_mem_kib(p.pid)["VmRSS"] * 1024 / 1e6)
    lines = [ln for ln in access_log_lines(ctx)[n0:] if ln.startswith('"GET /manifest ')]
    conns = {re.search(r"conn=(\d+)", ln).group(1) for ln in lines}
    if len(lines) != 5 or len(conns) != 5 or any(ln.split()[3] != "304" for ln in lines):
        die(f"SIGUSR1 polls: {len(lines)} requests over {len(conns)} connections, "
            "not five 304s over five")
    cpu_ms = med(per_poll) / 1e6
    say(f"  new TLS connection per poll (nginx keepalive_timeout 0), 5 polls on SIGUSR1: CPU "
        f"{spread([x / 1e9 for x in per_poll], ms)} per poll including the release; VmRSS "
        "between polls " + ", ".join(f"{x:.1f}" for x in rss_between) + " MB")
    ctx.row("4 idle", "CPU per 304 poll, new TLS connection each time (incl. release)",
            f"{cpu_ms:.2f} ms", f"{curl_ms:.2f} ms curl process", f"{cpu_ms / curl_ms:.2f}",
            "(information)")
    ctx.row("4 idle", "VmRSS between polls, new TLS connection each time",
            f"{max(rss_between):.1f} MB", "-", "-", f"< {RSS_TARGET_MB:g} MB",
            max(rss_between) < RSS_TARGET_MB)
    stop_slotd(ctx, d)


def trigger(d: Daemon) -> int:
    c = http.client.HTTPConnection("127.0.0.1", d.trigger_port, timeout=10)
    try:
        c.request("POST", "/api/v1/update/trigger", b"",
                  {"Authorization": f"Bearer {d.token}", "Content-Length": "0"})
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def bench_events(ctx: Ctx, d: Daemon) -> None:
    say("== 5. events")
    if d.proc is None:
        start_slotd(ctx, d, d.conf_60s)
        time.sleep(1.5)
    coll = ctx.collector
    outbox = d.store / "state" / "outbox"
    watch = DirWatch(outbox, IN_MOVED_TO, read_json=True)
    to_coll, to_file, to_avail = [], [], []
    try:
        for k in range(1, TRIGGER_RUNS + 1):
            version = f"2.0.{k}"
            publish(ctx, "www-small", d.pkgs[version])
            time.sleep(0.2)
            coll.reset()
            n0 = len(watch.snapshot())
            t0 = time.monotonic()
            status = trigger(d)
            if status != 202:
                die(f"trigger answered {status}, not 202")

            def completed():
                return any(e["type"] == "worker_update_completed" and
                           e["to_version"] == version for e in coll.log())
            wait_for(f"worker_update_completed for {version}", completed, 20, 0.05)
            log = coll.log()
            got = next(e for e in log if e["type"] == "worker_update_started")
            files = watch.snapshot()[n0:]
            by_id = {doc["id"]: t for t, _, doc in files if doc}
            # A file delivered before it could be read is matched by order:
            # the outbox is delivered oldest first, and names sort by age.
            names = sorted((name, t) for t, name, _ in files if name.endswith(".json"))
            t_file = by_id.get(got["id"])
            if t_file is None and len(names) >= len(log):
                t_file = names[log.index(got)][1]
            avail = next((e for e in log if e["type"] == "worker_update_available"), None)
            to_coll.append(got["t"] - t0)
            if t_file is not None:
                to_file.append(t_file - t0)
            if avail is not None:
                t_av = by_id.get(avail["id"])
                if t_av is not None:
                    to_avail.append(t_av - t0)
            say(f"  trigger {k} ({version}): worker_update_started at the collector "
                f"{ms(to_coll[-1])}, in the outbox "
                f"{ms(t_file - t0) if t_file is not None else 'n/a'}"
                + (f" (worker_update_available in the outbox {ms(to_avail[-1])})"
                   if avail is not None and to_avail else ""))
    finally:
        watch.close()
    ctx.row("5 events", "trigger -> worker_update_started at the collector (median of 5)",
            ms(med(to_coll)), "-", "-", f"< {TRIGGER_TARGET_MS:g} ms",
            med(to_coll) * 1e3 < TRIGGER_TARGET_MS)
    if to_file:
        ctx.row("5 events", "trigger -> worker_update_started file in the outbox",
                ms(med(to_file)), "-", "-", f"< {TRIGGER_TARGET_MS:g} ms",
                med(to_file) * 1e3 < TRIGGER_TARGET_MS)
    if to_avail:
        ctx.row("5 events", "  of which: trigger -> worker_update_available file (parent)",
                ms(med(to_avail)), "-", "-", "(information)")
    stop_slotd(ctx, d)

    # The backlog: 10,000 copies of a real event, fresh ids, in order.
    leftover = [n for n in os.listdir(outbox) if n.endswith(".json")]
    if leftover:
        die(f"the outbox still holds {len(leftover)} events before the backlog test")
    seq_file = d.store / "state" / "outbox.seq"
    try:
        seq = int(seq_file.read_text().strip() or 0)
    except FileNotFoundError:
        seq = 0
    bodies, ids = [], []
    for i in range(BACKLOG):
        doc = dict(d.template, id=str(uuid.uuid4()))
        ids.append(doc["id"])
        body = json.dumps(doc, separators=(",", ":")).encode()
        bodies.append(body)
        (outbox / f"{seq + 1 + i:020d}.json").write_bytes(body)
    # slotd's own next event goes after them (the counter is slotd's).
    seq_file.write_text(f"{seq + BACKLOG:020d}\n")
    os.sync()
    coll.reset()
    wanted = set(ids)
    t0 = time.monotonic()
    p = start_slotd(ctx, d, d.conf_60s)

    def all_in():
        if p.poll() is not None:
            die(f"slotd exited with {p.returncode}")
        return coll.count() >= BACKLOG

    wait_for(f"{BACKLOG} events at the collector", all_in, 120, 0.1)
    t_empty = wait_for("an empty outbox", lambda: (not any(
        n.endswith(".json") for n in os.listdir(outbox))) and time.monotonic(), 30, 0.005)
    log = coll.log()
    got = [e for e in log if e["id"] in wanted]
    if len(got) < BACKLOG:
        time.sleep(0.5)
        log = coll.log()
        got = [e for e in log if e["id"] in wanted]
    in_order = [e["id"] for e in got] == ids
    dupes = len(got) - len({e["id"] for e in got})
    t_last = max(e["t"] for e in got)
    slotd_s = t_last - t0
    say(f"  backlog: {len({e['id'] for e in got})} of {BACKLOG} delivered "
        f"{'in order' if in_order else 'OUT OF ORDER'}, {dupes} duplicates; last at the "
        f"collector {secs(slotd_s)} after slotd started, outbox empty at "
        f"{secs(t_empty - t0)} ({BACKLOG / slotd_s:.0f} events/s)")
    stop_slotd(ctx, d)

    # Baseline: the same bodies from Python over one kept-alive connection.
    coll.reset()
    c = http.client.HTTPConnection("127.0.0.1", coll.port, timeout=30)
    start = time.monotonic()
    for body in bodies:
        c.request("POST", "/events", body, {"Content-Type": "application/cloudevents+json"})
        r = c.getresponse()
        r.read()
        if r.status // 100 != 2:
            die(f"the collector answered {r.status}")
    base_s = time.monotonic() - start
    c.close()
    say(f"  baseline: Python http.client, one keep-alive connection: {secs(base_s)} "
        f"({BACKLOG / base_s:.0f} events/s)")
    ctx.row("5 events", f"backlog of {BACKLOG} delivered (slotd start -> last at collector)",
            secs(slotd_s), f"{secs(base_s)} Python client", f"{slotd_s / base_s:.2f}",
            f"< {BACKLOG_TARGET_S:g} s", slotd_s < BACKLOG_TARGET_S and in_order)


# ---------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(description="slotd update-cycle benchmark: figures against "
                                            "baselines measured in the same run")
    p.add_argument("--only", default=",".join(SECTIONS),
                   help=f"sections, comma-separated [{','.join(SECTIONS)}]")
    p.add_argument("--rounds", type=int, default=3, help="download rounds [3]")
    p.add_argument("--size-mb", type=float, default=150, help="large package tree [150]")
    p.add_argument("--files", type=int, default=3000, help="files in it [3000]")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated data [1]")
    p.add_argument("--settle", type=float, default=0,
                   help="seconds to wait after syncing, before each timed download run [0]")
    p.add_argument("--workdir", default="/var/tmp", help="where the work folder goes [/var/tmp]")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--collector", metavar="PORT_FILE", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.only = [s for s in a.only.split(",") if s]
    for s in a.only:
        if s not in SECTIONS:
            p.error(f"unknown section {s!r} (one of {', '.join(SECTIONS)})")
    return a


def main(argv) -> int:
    args = parse_args(argv)
    if args.collector:
        return collector_main(args.collector)
    if os.geteuid() != 0:
        print("bench_cycle: run as root (systemd in namespaces)", file=sys.stderr)
        return 1
    slotctl_bin, slotd_bin = REPO / "slotctl", REPO / "slotd"
    for b in (slotctl_bin, slotd_bin):
        if not os.access(b, os.X_OK):
            print(f"bench_cycle: {b} not found: run `make` first", file=sys.stderr)
            return 1
        if b"__asan_init" in b.read_bytes():
            print(f"bench_cycle: {b} is a sanitizer build: relink it without SANITIZE",
                  file=sys.stderr)
            return 1
    for tool in ("nginx", "curl", "zstd", "minisign", "openssl", "strace", "tar"):
        if not shutil.which(tool):
            print(f"bench_cycle: {tool} not found in PATH", file=sys.stderr)
            return 1

    work = Path(tempfile.mkdtemp(prefix="slotd-bench-cycle.", dir=args.workdir))
    work.chmod(0o755)
    ctx = Ctx(args, work, Procs(), slotctl_bin, slotd_bin)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    rc = 0
    try:
        say(f"slotd cycle benchmark in {work}")
        make_keys(ctx)
        if {"download", "idle", "events"} & set(args.only):
            start_nginx(ctx)
        if {"restart", "refused", "idle"} & set(args.only):
            s = svc_setup(ctx)
            try:
                if "restart" in args.only:
                    bench_restart(ctx, s)
                if "refused" in args.only:
                    bench_refused(ctx, s)
                if "idle" in args.only:
                    bench_idle_service(ctx, s)
            finally:
                run([SDBOX, "stop", ctx.box], check=False, timeout=60)
                ctx.box = None
        if "download" in args.only:
            bench_download(ctx)
        if "idle" in args.only or "events" in args.only:
            port_file = work / "collector.port"
            ctx.procs.start([sys.executable, __file__, "--collector", port_file])
            wait_for("the collector", lambda: port_file.exists(), 10)
            ctx.collector = Collector(int(port_file.read_text()))
            d = daemon_setup(ctx)
            if "idle" in args.only:
                bench_idle(ctx, d)
            if "events" in args.only:
                bench_events(ctx, d)
            stop_slotd(ctx, d)
    except BenchError as e:
        print(f"bench_cycle: error: {e}", file=sys.stderr, flush=True)
        rc = 1
    finally:
        ctx.procs.stop_all()
        if ctx.box is not None:
            run([SDBOX, "stop", ctx.box], check=False, timeout=60)
        for slots in work.glob("*/root/slots"):
            try:
                settle_trash(slots, 120)
            except BenchError:
                pass
        if args.keep:
            say(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    say(f"== summary ({time.monotonic() - started:.0f} s; load average {load_before:.1f} "
        f"before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs)")
    print_table(ctx.rows)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
