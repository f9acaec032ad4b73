#!/usr/bin/env bash
# test-troubleshooting.sh: every message of the README's "Troubleshooting"
# table is what the programs really print. The table is read at run time
# (troubleshooting/rows.py turns each message into a pattern: placeholders
# and "..." become wildcards); each row needs a case below that brings the
# situation about with the real binaries and captures what was printed
# (slotctl's stderr, or a field of `slotctl --json status`). A row without
# a case, a case whose row is gone, or output that does not match the
# README's wording fails. Situations: bad configs; tampered, untrusted,
# unsafe, foreign and older packages; a held lock; failing and hanging
# hooks; small tmpfs mounts for the free-space rows; a Python http.server
# as the coordinator, with manifests slot-publish would never write; the
# events collector answering 500; and one systemd box (sdbox) for the
# service rows: a missing unit, an unreachable bus, a service that is not
# healthy, crash-loops, reports another version, or leaves the store
# degraded, and a switch to a slot marked bad. One "ok - produced: ..." or
# "not ok - ..." line per row.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/lib-coordinator.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-coordinator.sh"
# shellcheck source=tests/integration/service/lib-service.sh
source "$(dirname "${BASH_SOURCE[0]}")/service/lib-service.sh"
# Both libraries set an EXIT trap; this test needs both cleanups: the
# tmpfs mounts first, then the box, then $T and the tracked processes.
trap '_coord_cleanup; _svc_cleanup; _cleanup' EXIT

ROWS_PY=$ROOT/tests/integration/troubleshooting/rows.py
# SLOTD_TEST_README: another copy of the README, to see this test fail.
README=${SLOTD_TEST_README:-$ROOT/README.md}
CASES=$T/cases
SERVE=$T/serve
TS_HOOKS=$T/ts-hooks
mkdir -p "$CASES" "$SERVE" "$TS_HOOKS"
t_start=$SECONDS

# --- Cases --------------------------------------------------------------------
# produce MESSAGE WHERE TEXT: TEXT (what WHERE printed) is this test's
# evidence for the README row MESSAGE (the first column, backticks removed).
declare -A case_file=() case_where=()
n_cases=0
produce() {
	n_cases=$((n_cases + 1))
	case_file[$1]=$CASES/$n_cases.txt
	case_where[$1]=$2
	printf '%s\n' "$3" >"$CASES/$n_cases.txt"
}

# produce_err MESSAGE: the last sc run's stderr is the evidence.
produce_err() {
	produce "$1" "slotctl ${last_cmd#-c "$CONF" } (exit $rc), stderr" "$err"
}

# sc_env VAR=VALUE... -- ARG...: sc with extra environment.
sc_env() {
	local envs=()
	while [ "$1" != -- ]; do
		envs+=("$1")
		shift
	done
	shift
	last_cmd="-c $CONF $*"
	out=$(env "${envs[@]}" "$SLOTCTL" -c "$CONF" "$@" 2>"$T/.stderr")
	rc=$?
	err=$(cat "$T/.stderr")
}

# setup DESCRIPTION EXPECTED_RC: a step the cases rely on; a failure is
# reported (and the rows depending on it fail for want of evidence).
setup() {
	if [ "$rc" = "$2" ]; then
		return 0
	fi
	_fail "setup: $1" "expected exit $2
$(_last_run)"
	return 1
}

make_key main
make_key other untrusted
# (lib-service.sh's svc_reset reuses $P100 when set: these are K*.)
K100=$(make_pkg demo-app 1.0.0)
K110=$(make_pkg demo-app 1.1.0)
K120=$(make_pkg demo-app 1.2.0)

# --- Configuration --------------------------------------------------------------
# No -c, no SLOTD_CONFIG: the default path. When the host has a config
# there, a private mount namespace hides it behind an empty tmpfs.
if [ -e /etc/slotd/slotd.conf ]; then
	# shellcheck disable=SC2016 # $0 is for the inner sh
	err=$(env -u SLOTD_CONFIG unshare --mount --propagation private sh -c \
		'mount -t tmpfs -o size=1M tmpfs /etc/slotd && exec "$0" status' "$SLOTCTL" 2>&1 >/dev/null)
else
	err=$(env -u SLOTD_CONFIG "$SLOTCTL" status 2>&1 >/dev/null)
fi
rc=$?
produce "cannot read config /etc/slotd/slotd.conf: No such file or directory" \
	"slotctl status without -c or SLOTD_CONFIG (exit $rc), stderr" "$err"

write_config agent.check_interval=soon
sc status
produce_err 'FILE:LINE: bad value for [section] key: "value" (expected ...)'

write_config agent.colour=blue
sc status
produce_err 'FILE:LINE: unknown key "key" in [section], ignored'

# --- Packages and the store (no service unit) ----------------------------------------
write_config
sc -q install "$K100"
setup "1.0.0 installs into slot a" 0

flock -n "$T/state/lock" "$SLOTCTL" -c "$CONF" install "$K110" >/dev/null 2>"$T/.stderr"
rc=$? err=$(cat "$T/.stderr") last_cmd="-c $CONF install 1.1.0 (lock held by flock)"
produce_err "store is busy: another operation holds the lock ..."

tampered=$T/tampered/$(basename "$K110")
mkdir -p "$T/tampered"
cp "$K110" "$K110.minisig" "$T/tampered/"
printf 'x' >>"$tampered"
sc install "$tampered"
produce_err "signature does not match the content"

K110u=$(PKG_KEY=$T/secret/other.key make_pkg demo-app 1.1.0)
sc install "$K110u"
produce_err "signed by an untrusted key (key id ...)"

edited=$T/edited/$(basename "$K110")
mkdir -p "$T/edited"
cp "$K110" "$T/edited/"
sed '3s/^trusted comment: .*/trusted comment: edited by hand/' "$K110.minisig" >"$edited.minisig"
sc install "$edited"
produce_err "trusted comment does not match its signature"

# A path out of the slot (to $T/root/escape, were it ever unpacked).
craft_tar "$T/unsafe.tar" file:../../escape
sign "$T/unsafe.tar"
sc install "$T/unsafe.tar"
produce_err "unsafe archive: ..."

sc install "$(make_pkg other-app 1.1.0)"
produce_err 'package name "x" is not compatible with "y"'

sc install "$(make_pkg demo-app 0.9.0)"
produce_err "downgrade from X to Y refused"

# Hooks: an operator pre-install hook that fails, then one that overruns.
write_config agent.hooks_dir="$TS_HOOKS" agent.hook_timeout=1s
printf '#!/bin/sh\necho "refusing on purpose"\nexit 3\n' >"$TS_HOOKS/pre-install"
chmod 0755 "$TS_HOOKS/pre-install"
sc install "$K110"
produce_err "hook NAME (PATH) exited with status N"

printf '#!/bin/sh\nexec sleep 30\n' >"$TS_HOOKS/pre-install"
sc install "$K110"
produce_err "hook NAME (PATH) did not finish within N s"
rm -f "$TS_HOOKS/pre-install"

# The slots' file system too full to unpack: a fresh store on a 4 MiB
# tmpfs, a package of 6 MiB of random data (incompressible, so the
# space is really taken).
blob6=$T/src/blob6
mkdir -p "$blob6/share"
head -c $((6 * 1024 * 1024)) /dev/urandom >"$blob6/share/blob"
K110big=$(make_pkg demo-app 1.1.0 zstd "$blob6")
small_root=$T/small-root
if coord_mount_tmpfs "$small_root" 4M; then
	write_config slots.root="$small_root" agent.state_dir="$T/state-small" slots.min_free_space=1M
	sc install "$K110big"
	# When it goes through anyway, what landed on the tmpfs says why.
	blob=$small_root/current/share/blob
	if [ "$rc" = 0 ] && [ -f "$blob" ]; then
		err="$err
(exit 0: share/blob is $(stat -c %s "$blob") bytes long, $(($(stat -c %b "$blob") * $(stat -c %B "$blob"))) \
of them stored; $(df -B1 --output=avail "$small_root" | tail -n1 | tr -d ' ') bytes left on the tmpfs)"
	fi
	produce_err "not enough free space to unpack the package: ..."
	coord_umount "$small_root" || _fail "unmount the tmpfs $small_root"
else
	_fail "setup: mount a 4 MiB tmpfs on $small_root"
fi

# --- The coordinator: a Python http.server on SERVE/current ------------------------
publish() { # publish [slot-publish OPTION...] PACKAGE
	"$SLOT_PUBLISH" -k "$T/secret/main.key" -d "$SERVE" "$@" >/dev/null 2>"$T/publish.err" ||
		_fail "setup: slot-publish $*" "$(cat "$T/publish.err")"
}
publish "$K120"
COORD_PORT=$(free_port)
"$PYTHON" -m http.server --bind 127.0.0.1 --directory "$SERVE/current" "$COORD_PORT" \
	>"$T/coord.log" 2>&1 &
coord_pid=$!
track_pid "$coord_pid"
if ! wait_for 5 curl -fsS -o /dev/null "http://127.0.0.1:$COORD_PORT/manifest" 2>/dev/null; then
	_fail "setup: http.server serves $SERVE/current" "$(cat "$T/coord.log")"
fi
MANIFEST_URL=http://127.0.0.1:$COORD_PORT/manifest
coord_conf() { # coord_conf [SECTION.KEY=VALUE...]
	write_config coordinator.manifest_url="$MANIFEST_URL" coordinator.retries=1 \
		coordinator.retry_backoff=100ms "$@"
}
coord_conf

publish "$K120"
printf ' ' >>"$(realpath "$SERVE/current/manifest")"
sc update
produce_err "manifest signature URL: signature does not match the content"

publish "$K120"
rm "$SERVE/current/manifest.minisig"
sc update
produce_err "manifest signature URL is missing (HTTP 404)"

publish -e 2020-01-01T00:00:00Z "$K120"
sc update
produce_err "manifest expired (...)"

publish "$(make_pkg other-app 1.2.0)"
sc update
produce_err 'manifest names package "x", not "y"'

big=$T/src/big
mkdir -p "$big/share"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$big/share/blob"
Kbig=$(make_pkg demo-app 1.2.0 zstd "$big")
publish "$Kbig"
manifest_edit "$SERVE" "$T/secret/main.key" size=65536
sc update
produce_err "... sent more than the manifest's size of N bytes: download stopped"

publish "$K120"
manifest_edit "$SERVE" "$T/secret/main.key" sha256="\"$(printf other | sha256sum | cut -d' ' -f1)\""
sc update
produce_err "... does not match the manifest's sha256 ..."

# The package on a port nothing listens on: refused, retried once.
dead_port=$(free_port)
publish -u "http://127.0.0.1:$dead_port/" "$K120"
sc update
produce_err "download failed after N attempt..."

# state_dir on a 2 MiB tmpfs, a 5 MiB package offered.
big5=$T/src/big5
mkdir -p "$big5/share"
head -c $((5 * 1024 * 1024)) /dev/urandom >"$big5/share/blob"
publish "$(make_pkg demo-app 1.2.0 zstd "$big5")"
small_state=$T/small-state
if coord_mount_tmpfs "$small_state" 2M; then
	cp -a "$T/state/." "$small_state/"
	coord_conf agent.state_dir="$small_state"
	sc update
	produce_err "not enough free space in ... for the download"
	coord_umount "$small_state" || _fail "unmount the tmpfs $small_state"
else
	_fail "setup: mount a 2 MiB tmpfs on $small_state"
fi
kill -TERM "$coord_pid" 2>/dev/null
reap_pid "$coord_pid"

# --- Events: the collector answers 500 ----------------------------------------------
echo fail >"$T/collector.mode"
"$PYTHON" "$ROOT/tests/integration/events/collector.py" --log "$T/collector.jsonl" \
	--control "$T/collector.mode" --root "$SERVE/current" --port-file "$T/collector.port" \
	2>"$T/collector.err" &
coll_pid=$!
track_pid "$coll_pid"
if wait_for 10 test -s "$T/collector.port"; then
	write_config coordinator.events_url="http://127.0.0.1:$(cat "$T/collector.port")/events"
	sc install "$K120"
	setup "1.2.0 installs while the collector answers 500" 0
	sc --json status
	produce "cannot deliver events to URL: ..." \
		"slotctl --json status after an install, events_last_error" "$(jq_get events_last_error "$out")"
else
	_fail "setup: the events collector starts" "$(cat "$T/collector.err")"
fi
kill -TERM "$coll_pid" 2>/dev/null
reap_pid "$coll_pid"

# --- The service, under a real systemd ------------------------------------------------
# svc_cfg [SECTION.KEY=VALUE...]: lib-service's config, with the short
# timeouts of this test.
svc_cfg() {
	svc_config health.timeout=3s rollback.timeout=5s "$@"
}
# crash_unit: demo.service restarted by systemd as soon as it fails.
crash_unit() {
	cat >"$UNITS/demo.service" <<EOF
[Unit]
Description=demo-app managed by slotd (integration test, restarted at once)
Requires=demo.socket
After=demo.socket
StartLimitIntervalSec=0

[Service]
Type=notify
ExecStart=$STORE/current/demo-app.py
Restart=on-failure
RestartSec=0
EOF
	box systemctl daemon-reload
}
if svc_box_start && svc_reset health.timeout=3s rollback.timeout=5s; then
	S110=$(app_pkg 1.1.0 healthy)

	svc_cfg service.unit=no-such-unit.service
	sc install "$S110"
	produce_err "unit x not found on the system bus (not-found)"

	svc_cfg
	sc_env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$T/no-such-bus-socket" -- install "$S110"
	produce_err "cannot connect to the system bus for x: ..."

	sc install "$(app_pkg 1.3.0 health-500)"
	produce_err "... not healthy within N s"

	# 1.3.0 was reverted: its slot is bad now.
	bad_slot=none
	for slot in a b; do
		[ "$(slot_state "$slot")" != bad ] || bad_slot=$slot
	done
	sc switch "$bad_slot"
	produce_err "slot x is marked bad: refusing to switch"

	sc install "$(app_pkg 1.4.0 wrong-version)"
	produce_err "x runs version A, expected B"

	# Restarted at once: with RestartSec= of some 200 ms or more the checks
	# rather see the unit waiting to restart, and say "is activating
	# (auto-restart)".
	crash_unit
	sc install "$(app_pkg 1.5.0 crash-after=0.2)"
	produce_err "x restarted by itself (...): crash loop"
	svc_unit

	# A broken 1.9.0 installed unchecked, then a bad 2.0.0 whose revert to
	# 1.9.0 fails too.
	svc_reset health.timeout=3s rollback.timeout=5s
	svc_cfg service.unit=
	sc -q install "$(app_pkg 1.9.0 exit-at-start)"
	setup "1.9.0 (exits at start) installs without a service to check it" 0
	svc_cfg
	sc install "$(app_pkg 2.0.0 health-500)"
	produce_err "... degraded, an operator must act"
else
	_fail "setup: the systemd box runs demo.service"
fi

# --- The verdict, row by row ----------------------------------------------------------
mapfile -t rows < <("$PYTHON" -S "$ROWS_PY" rows "$README")
declare -A in_readme=()
for row in "${rows[@]}"; do
	in_readme[${row%%$'\t'*}]=1
done
# Cases whose message is no row: a README row reworded shows up here too,
# with what the program prints.
orphans=
for message in "${!case_file[@]}"; do
	[ -z "${in_readme[$message]:-}" ] || continue
	orphans+="case \"$message\": ${case_where[$message]}:
$(grep -m2 . "${case_file[$message]}" | sed 's/^/  /')
"
	_fail "the README lists the message of a case: $message" \
		"no row of the Troubleshooting table is this message; update the case or the table"
done

for row in "${rows[@]}"; do
	message=${row%%$'\t'*} regex=${row#*$'\t'}
	file=${case_file[$message]:-}
	if [ -z "$file" ]; then
		_fail "no case produces: $message" "${orphans:+cases without a row:
$orphans}"
		continue
	fi
	if line=$("$PYTHON" -S "$ROWS_PY" match "$regex" "$file"); then
		_pass "produced: $message"
		echo "#   ${case_where[$message]%%, *}: $line"
	else
		_fail "produced: $message" "README:  $message
pattern: $regex
${case_where[$message]}:
$(sed 's/^/  /' "$file")"
	fi
done
n_rows=${#rows[@]}
if [ "$n_rows" -eq 0 ]; then
	_fail "the README's Troubleshooting table has rows" "none found in $README"
fi
echo "# $n_rows rows, $n_cases cases, $((SECONDS - t_start)) s"
finish
