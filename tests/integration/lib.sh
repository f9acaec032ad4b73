# lib.sh: shared helpers of the integration tests, sourced by test-*.sh.
# It owns the per-test temporary folder $T (removed on exit, along with the
# processes a test registered with track_pid), the TAP-like output
# ("ok - ..." / "not ok - ..."), and building keys, packages and configs
# with the project's own scripts. Tests drive the real binaries, through
# $SLOTCTL and $SLOTD: copies of ./slotctl and ./slotd taken when sourced.
#
#   check "description" CMD...       ok when CMD exits 0; prints its output if not
#   check_eq "description" EXPECTED ACTUAL
#   check_rc "description" EXPECTED_RC        against the last sc run
#   check_err "description" FRAGMENT          last sc run's stderr contains it
#                                             (ignoring case)
#   check_out "description" FRAGMENT          last sc run's stdout contains it
#   finish                           prints a summary, exits 1 on any failure
#   sc ARG...                        runs slotctl -c $CONF; sets $rc $out $err
#   track_pid PID / reap_pid PID     background processes, killed on exit
#   make_key NAME [untrusted]        $T/secret/NAME.key, NAME.pub (copied to $T/keys)
#   make_pkg NAME VERSION [COMPRESSION] [EXTRA_DIR]   prints the package path
#   write_config [SECTION.KEY=VALUE...]               writes $CONF
#   jq_get FIELD [JSON]              a dotted field of JSON (default: status)

set -uo pipefail

# The interpreter itself, not a version manager's shim: the tests start it
# hundreds of times.
PYTHON=$(python3 -c 'import sys; print(sys.executable)')

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SLOT_KEYGEN=$ROOT/scripts/slot-keygen
SLOT_PACKAGE=$ROOT/scripts/slot-package

_test_tmp=${SLOTD_TEST_TMP:-/var/tmp}
T=$(mktemp -d "$_test_tmp/slotd-test.XXXXXX") || {
	echo "not ok - cannot create a temporary folder under $_test_tmp"
	exit 1
}

# The tests run copies of $ROOT/slotctl and $ROOT/slotd taken now: a
# rebuild while a test runs (make replaces the files) must not turn into
# failures halfway through. A build in progress gets a few seconds to end.
# $T must be visible wherever the copies run.
mkdir -p "$T/bin"
_snapshot() { # _snapshot NAME: copies $ROOT/NAME into $T/bin if it runs
	local _
	for _ in $(seq 20); do
		if cp "$ROOT/$1" "$T/bin/$1" 2>/dev/null && "$T/bin/$1" --help >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.5
	done
	return 1
}
if ! _snapshot slotctl; then
	echo "not ok - $ROOT/slotctl is missing or does not run: run make first"
	rm -rf -- "$T"
	exit 1
fi
SLOTCTL=$T/bin/slotctl
# shellcheck disable=SC2034 # for the tests that start the daemon
if _snapshot slotd; then SLOTD=$T/bin/slotd; else SLOTD=$ROOT/slotd; fi

CONF=$T/slotd.conf
STORE=$T/root
mkdir -p "$T/keys" "$T/secret" "$T/pkgs" "$T/src" "$STORE"

_n_ok=0
_n_fail=0
_pids=()

# track_pid PID: a background process of the test, killed on exit unless
# reaped before with reap_pid.
track_pid() {
	_pids+=("$1")
}

# reap_pid PID: waits for a tracked process and forgets it (its PID may be
# reused afterwards); returns its exit status.
reap_pid() {
	local pid status keep=()
	wait "$1" 2>/dev/null # no "Killed" line from the shell
	status=$?
	for pid in "${_pids[@]}"; do
		[ "$pid" = "$1" ] || keep+=("$pid")
	done
	_pids=("${keep[@]}")
	return "$status"
}

_cleanup() {
	local pid
	# Only PIDs still among this shell's unreaped jobs: those cannot have
	# been reused by another process.
	for pid in "${_pids[@]}"; do
		if jobs -p | grep -qx "$pid"; then
			kill -9 "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
		fi
	done
	# A failed test may leave read-only folders behind.
	chmod -R u+rwX "$T" 2>/dev/null
	rm -rf -- "$T"
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

_pass() {
	_n_ok=$((_n_ok + 1))
	echo "ok - $1"
}

# _fail DESCRIPTION [DETAIL]: the detail is printed as "#" comment lines.
_fail() {
	_n_fail=$((_n_fail + 1))
	echo "not ok - $1"
	if [ -n "${2:-}" ]; then
		printf '%s\n' "$2" | sed 's/^/#   /'
	fi
}

check() {
	local desc=$1 output status
	shift
	output=$("$@" 2>&1)
	status=$?
	if [ "$status" -eq 0 ]; then
		_pass "$desc"
	else
		_fail "$desc" "command: $*
exit $status
$output"
	fi
}

# free_port: a TCP port free on 127.0.0.1 right now.
free_port() {
	"$PYTHON" -S -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Like check, but the command must fail (exit non-zero).
check_fails() {
	local desc=$1 output
	shift
	if output=$("$@" 2>&1); then
		_fail "$desc" "command succeeded but should have failed: $*
$output"
	else
		_pass "$desc"
	fi
}

check_eq() {
	if [ "$2" = "$3" ]; then
		_pass "$1"
	else
		_fail "$1" "expected: $2
actual:   $3"
	fi
}

# The last sc run: its output, for the report of a failed check.
_last_run() {
	printf 'command: slotctl %s\nexit %s\nstdout: %s\nstderr: %s' \
		"${last_cmd:-}" "${rc:-}" "${out:-}" "${err:-}"
}

check_rc() {
	if [ "${rc:-}" = "$2" ]; then
		_pass "$1"
	else
		_fail "$1" "expected exit $2
$(_last_run)"
	fi
}

check_err() {
	local e=${err:-} f=$2
	if [[ ${e,,} == *"${f,,}"* ]]; then
		_pass "$1"
	else
		_fail "$1" "stderr lacks: $2
$(_last_run)"
	fi
}

check_out() {
	if [[ ${out:-} == *"$2"* ]]; then
		_pass "$1"
	else
		_fail "$1" "stdout lacks: $2
$(_last_run)"
	fi
}

finish() {
	echo "# $(basename "$0"): $_n_ok passed, $_n_fail failed"
	[ "$_n_fail" -eq 0 ] || exit 1
	exit 0
}

# sc ARG...: runs slotctl with the test's config; sets rc, out and err.
sc() {
	local errfile=$T/.stderr
	last_cmd="-c $CONF $*"
	out=$("$SLOTCTL" -c "$CONF" "$@" 2>"$errfile")
	rc=$?
	err=$(cat "$errfile")
	return 0
}

# make_key NAME [untrusted]: a key pair $T/secret/NAME.{key,pub}; the public
# key goes into the trusted folder $T/keys unless "untrusted" is given.
make_key() {
	"$SLOT_KEYGEN" "$T/secret/$1" >/dev/null || return 1
	if [ "${2:-}" != untrusted ]; then
		cp "$T/secret/$1.pub" "$T/keys/$1.pub"
	fi
}

# make_pkg NAME VERSION [COMPRESSION] [EXTRA_DIR]: a signed package of a
# small tree (bin/app, share/version holding VERSION, plus EXTRA_DIR's
# contents), signed with $PKG_KEY (default $T/secret/main.key). Each call
# writes into its own folder, so equal names never collide.
make_pkg() {
	local name=$1 version=$2 compression=${3:-zstd} extra=${4:-}
	local src out
	src=$(mktemp -d "$T/src/$name-$version.XXXX") || return 1
	out=$(mktemp -d "$T/pkgs/$name-$version.XXXX") || return 1
	mkdir -p "$src/bin" "$src/share"
	printf '#!/bin/sh\necho %s %s\n' "$name" "$version" >"$src/bin/app"
	chmod 0755 "$src/bin/app"
	printf '%s\n' "$version" >"$src/share/version"
	if [ -n "$extra" ]; then
		cp -a "$extra/." "$src/" || return 1
	fi
	"$SLOT_PACKAGE" -n "$name" -v "$version" -k "${PKG_KEY:-$T/secret/main.key}" \
		-c "$compression" -o "$out" "$src"
}

# sign FILE [KEY]: a prehashed minisign signature FILE.minisig.
sign() {
	minisign -S -s "${2:-${PKG_KEY:-$T/secret/main.key}}" -m "$1" </dev/null >/dev/null
}

# write_config [SECTION.KEY=VALUE...]: the minimal config of the tests, with
# overrides; an empty VALUE removes the key.
write_config() {
	"$PYTHON" -S - "$CONF" "$T" "$@" <<'EOF'
import sys
path, t, overrides = sys.argv[1], sys.argv[2], sys.argv[3:]
sections = {
    "agent": {"worker_id": "w1", "state_dir": f"{t}/state"},
    "slots": {"root": f"{t}/root", "compatible": "demo-app",
              "max_unpacked_size": "64M", "min_free_space": "1M"},
    "trust": {"keys": f"{t}/keys"},
}
for o in overrides:
    key, _, value = o.partition("=")
    section, _, key = key.partition(".")
    sec = sections.setdefault(section.strip(), {})
    if value.strip():
        sec[key.strip()] = value.strip()
    else:
        sec.pop(key.strip(), None)
with open(path, "w") as f:
    for name, keys in sections.items():
        f.write(f"[{name}]\n")
        for k, v in keys.items():
            f.write(f"{k} = {v}\n")
EOF
}

# jq_get FIELD [JSON]: prints a dotted field ("slots.a.state") of JSON, or
# of `slotctl --json status` when JSON is not given. Strings print raw,
# null as "null", other values as JSON. Exits 1 when the field is absent.
jq_get() {
	local json
	if [ $# -ge 2 ]; then
		json=$2
	else
		json=$("$SLOTCTL" -c "$CONF" --json status 2>/dev/null)
	fi
	_json_format "{$1}" "$json"
}

# _json_format FORMAT JSON: FORMAT with each {dotted.field} replaced by its
# value, as jq_get prints it; exits 1 when a field is absent.
_json_format() {
	printf '%s' "$2" | "$PYTHON" -S -c '
import json, re, sys
try:
    doc = json.load(sys.stdin)
except ValueError as e:
    print("<not JSON: %s>" % e)
    sys.exit(1)
missing = []
def field(m):
    v = doc
    for part in m.group(1).split("."):
        if not isinstance(v, dict) or part not in v:
            missing.append(m.group(1))
            return "<no field %s>" % m.group(1)
        v = v[part]
    return "null" if v is None else v if isinstance(v, str) else json.dumps(v)
print(re.sub(r"\{([A-Za-z0-9_.]+)\}", field, sys.argv[1]))
sys.exit(1 if missing else 0)
' "$1"
}

# Shorthands on the live status.
active_slot() { jq_get active_slot; }
slot_state() { jq_get "slots.$1.state"; }
slot_version() { jq_get "slots.$1.version"; }

# slot_summary: "active=b a=good/1.0.0 b=good/1.1.0" from one status call.
slot_summary() {
	_json_format "active={active_slot} a={slots.a.state}/{slots.a.version} b={slots.b.state}/{slots.b.version}" \
		"$("$SLOTCTL" -c "$CONF" --json status 2>/dev/null)"
}

# tree_sum DIR: one line per entry (path, type, mode, size, link target,
# content hash), sorted; equal output means an equal tree.
tree_sum() {
	(
		cd "$1" || exit 1
		find . -mindepth 1 -printf '%P %y %m %s %l\n' | LC_ALL=C sort
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
	)
}

# craft_tar OUT [--ini TEXT | --no-ini] [--gzip] [--truncate BYTES] ENTRY...
# writes a tar archive that slot-package would never make (Python's
# tarfile), for the unpacking rules. slot.ini (name demo-app, version
# $CRAFT_VERSION, default 9.0.0) comes first unless --no-ini or --ini TEXT.
# --truncate cuts the finished file to BYTES. ENTRY is one of
#   file:NAME[:MODE[:UID]]  dir:NAME  zero:NAME:SIZE (SIZE bytes of zeros)
#   symlink:NAME:TARGET  hardlink:NAME:TARGET  chr:NAME  blk:NAME  fifo:NAME
# Sign the result with `sign OUT`.
craft_tar() {
	"$PYTHON" -S - "$@" <<'PY'
import gzip, io, os, sys, tarfile
args = sys.argv[1:]
out = args.pop(0)
version = os.environ.get("CRAFT_VERSION", "9.0.0")
ini = "[package]\nname = demo-app\nversion = %s\n" % version
compress = False
truncate = None
entries = []
while args:
    a = args.pop(0)
    if a == "--ini":
        ini = args.pop(0)
    elif a == "--no-ini":
        ini = None
    elif a == "--gzip":
        compress = True
    elif a == "--truncate":
        truncate = int(args.pop(0))
    else:
        entries.append(a)

buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
    def add(info, data=b""):
        info.size = len(data) if info.isreg() else 0
        info.mtime = 1700000000
        tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    if ini is not None:
        info = tarfile.TarInfo("slot.ini")
        info.mode = 0o644
        add(info, ini.encode())
    for e in entries:
        kind, name, *rest = e.split(":")
        info = tarfile.TarInfo(name)
        info.mode = 0o644
        data = b""
        if kind == "file":
            data = ("content of %s\n" % name).encode()
            if rest:
                info.mode = int(rest[0], 8)
            if len(rest) > 1:
                info.uid = info.gid = int(rest[1])
        elif kind == "zero":
            data = bytes(int(rest[0]))
        elif kind == "dir":
            info.type, info.mode = tarfile.DIRTYPE, 0o755
        elif kind == "symlink":
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, rest[0], 0o777
        elif kind == "hardlink":
            info.type, info.linkname = tarfile.LNKTYPE, rest[0]
        elif kind in ("chr", "blk"):
            info.type = tarfile.CHRTYPE if kind == "chr" else tarfile.BLKTYPE
            info.devmajor, info.devminor = (1, 3) if kind == "chr" else (7, 0)
        elif kind == "fifo":
            info.type = tarfile.FIFOTYPE
        else:
            sys.exit("craft_tar: unknown entry kind %s" % kind)
        add(info, data)
data = buf.getvalue()
if compress:
    data = gzip.compress(data, compresslevel=1)
if truncate is not None:
    data = data[:truncate]
with open(out, "wb") as f:
    f.write(data)
PY
}

# wait_for SECONDS CMD...: polls CMD every 0.05 s until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}
