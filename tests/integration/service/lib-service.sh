# shellcheck shell=bash
# lib-service.sh: the managed-service side of test-service.sh and
# test-hooks.sh, sourced after lib.sh. It owns the systemd box the service
# runs in (tests/integration/sdbox/), the demo.socket/demo.service units,
# demo-app packages of a chosen behaviour, the config that makes slotctl
# restart and verify that unit, and readings of what the unit really does.
# The box is stopped, and every process recorded here is killed by PID,
# when the test exits.
#
#   svc_box_start             boots the box with demo.socket + demo.service;
#                             exports DBUS_SYSTEM_BUS_ADDRESS for slotctl
#   svc_unit [on-failure]     rewrites demo.service (Restart=on-failure,
#                             RestartSec=200ms with the argument) and reloads
#   svc_reset [CONFIG...]     stops the unit, empties store and state, writes
#                             the service config, installs 1.0.0 (healthy)
#   svc_config [SECTION.KEY=VALUE...]   the service config with overrides
#   app_pkg VERSION BEHAVIOUR [HOOKS_DIR]   a signed demo-app package
#   box CMD...                runs CMD inside the box
#   unit_state                the unit's ActiveState over the box's bus
#   unit_prop PROPERTY        any u/s property of demo.service
#   served                    the version the service answers, or "none"
#   current_link              readlink of $STORE/current
#   run_timed VAR CMD...      sc CMD..., with stderr lines timestamped in
#                             $T/timed.err; VAR gets the seconds it took
#   line_time PATTERN         the timestamp of the first stderr line of the
#                             last run_timed matching PATTERN
#   status_line               "phase=.. active=.. a=state/version b=.. result=.."
#   peek FIELD                a status field read while holding the store lock,
#                             so that status repairs nothing
#   wait_state STATE [SECS]   waits for the unit's ActiveState
#   events_since [N]          the outbox's event count, or the types after N
#   start_slotd / stop_pid PID   slotd in the background; SIGTERM and reap
#   record_pid_file FILE      "PID STARTTIME" lines written by the test's
#                             hooks: those processes are killed on exit
#   kill_recorded FILE        kills them now
#   alive PID                 the process exists and is no zombie

SDBOX=$ROOT/tests/integration/sdbox/sdbox.sh
DEMO_APP=$ROOT/tests/demo-app/demo-app.py
BOX=$T/box
UNITS=$T/units
HOOKS=$T/hooks
APP_PORT=
BUS=
_svc_box_up=no
_svc_pid_files=()

_svc_cleanup() {
	local f
	for f in "${_svc_pid_files[@]}"; do
		kill_recorded "$f"
	done
	if [ "$_svc_box_up" = yes ]; then
		"$SDBOX" stop "$BOX" >/dev/null 2>&1 ||
			echo "# warning: sdbox stop $BOX failed" >&2
	fi
}
trap '_svc_cleanup; _cleanup' EXIT

if [ "$(id -u)" -ne 0 ]; then
	echo "ok - SKIP $(basename "$0") needs root (systemd in namespaces)"
	exit 0
fi

alive() {
	local st
	st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$st" != Z ] && [ "$st" != X ]
}

# kill_recorded FILE: FILE holds "PID START_TIME" lines written by the
# test's own hook scripts; each process still alive with that start time
# (so not a reused PID) is killed.
kill_recorded() {
	local pid start
	[ -f "$1" ] || return 0
	while read -r pid start; do
		[ -n "$pid" ] || continue
		alive "$pid" || continue
		[ "$(cut -d' ' -f22 "/proc/$pid/stat" 2>/dev/null)" = "$start" ] || continue
		kill -KILL "$pid" 2>/dev/null
	done <"$1"
}

# record_pid_file FILE: FILE's PIDs are killed when the test exits.
record_pid_file() {
	_svc_pid_files+=("$1")
}

box() {
	"$SDBOX" exec "$BOX" "$@"
}

# shellcheck disable=SC2120 # the tests pass "on-failure"
svc_unit() {
	local restart=
	if [ "${1:-}" = on-failure ]; then
		restart=$'Restart=on-failure\nRestartSec=200ms'
	fi
	cat >"$UNITS/demo.service" <<EOF
[Unit]
Description=demo-app managed by slotd (integration test)
Requires=demo.socket
After=demo.socket
StartLimitIntervalSec=0

[Service]
Type=notify
ExecStart=$STORE/current/demo-app.py
$restart
EOF
	if [ "$_svc_box_up" = yes ]; then
		box systemctl daemon-reload
	fi
}

svc_box_start() {
	APP_PORT=$(free_port)
	mkdir -p "$UNITS" "$HOOKS"
	cat >"$UNITS/demo.socket" <<EOF
[Socket]
ListenStream=127.0.0.1:$APP_PORT
EOF
	svc_unit
	# Hooks and stores live in $T: the box must see them at the same path.
	chmod 0755 "$T"
	if ! "$SDBOX" start "$BOX" "$UNITS" "$T" >"$T/sdbox.out" 2>&1; then
		_fail "the systemd box boots" "$(cat "$T/sdbox.out")"
		return 1
	fi
	_svc_box_up=yes
	BUS=$("$SDBOX" bus "$BOX")
	export DBUS_SYSTEM_BUS_ADDRESS=$BUS
	box systemctl start demo.socket
}

# svc_config [SECTION.KEY=VALUE...]: the config of these tests: demo.service
# restarted over the box's bus, short timeouts, hooks from $HOOKS.
svc_config() {
	write_config \
		"agent.hooks_dir=$HOOKS" \
		"agent.hook_timeout=20s" \
		"service.unit=demo.service" \
		"service.restart_timeout=3s" \
		"health.url=http://127.0.0.1:$APP_PORT/health" \
		"health.version_url=http://127.0.0.1:$APP_PORT/api/v1/version" \
		"health.interval=300ms" \
		"health.successes=3" \
		"health.timeout=4s" \
		"health.settle=0s" \
		"health.monitor_interval=1h" \
		"rollback.timeout=8s" \
		"$@"
}

# app_pkg VERSION BEHAVIOUR [HOOKS_DIR]: demo-app VERSION that behaves so,
# with HOOKS_DIR's files as the package's hooks/.
app_pkg() {
	local src
	src=$(mktemp -d "$T/src/app-$1.XXXX") || return 1
	cp "$DEMO_APP" "$src/demo-app.py"
	printf 'version = %s\nbehaviour = %s\nport = %s\n' "$1" "$2" "$APP_PORT" >"$src/app.ini"
	if [ -n "${3:-}" ]; then
		mkdir -p "$src/hooks"
		cp -a "$3/." "$src/hooks/"
	fi
	make_pkg demo-app "$1" zstd "$src"
}

# svc_reset [CONFIG...]: a fresh store running 1.0.0 (healthy) from slot a
# under demo.service, with the service config (plus CONFIG overrides).
svc_reset() {
	box systemctl stop demo.service demo.socket >/dev/null 2>&1
	box systemctl reset-failed >/dev/null 2>&1
	rm -rf "$STORE" "$T/state"
	rm -f "$HOOKS"/*
	mkdir -p "$STORE"
	svc_config "$@"
	box systemctl start demo.socket
	[ -n "${P100:-}" ] || P100=$(app_pkg 1.0.0 healthy)
	sc -q install "$P100"
	if [ "$rc" != 0 ]; then
		_fail "a fresh store runs 1.0.0" "$(_last_run)"
		return 1
	fi
}

unit_prop() {
	local iface=org.freedesktop.systemd1.Unit
	case $1 in
	MainPID | NRestarts | Result | ExecMainStatus) iface=org.freedesktop.systemd1.Service ;;
	esac
	busctl --address="$BUS" get-property org.freedesktop.systemd1 \
		/org/freedesktop/systemd1/unit/demo_2eservice "$iface" "$1" 2>/dev/null |
		sed -E 's/^[a-z] //; s/^"(.*)"$/\1/'
}

unit_state() {
	unit_prop ActiveState
}

# served: what /api/v1/version reports. Note that on a stopped unit the
# request itself starts it (socket activation).
served() {
	curl -fsS --max-time 3 "http://127.0.0.1:$APP_PORT/api/v1/version" 2>/dev/null |
		"$PYTHON" -S -c 'import json, sys; print(json.load(sys.stdin)["codebase_version"])' 2>/dev/null ||
		echo none
}

current_link() {
	readlink "$STORE/current"
}

# run_timed VAR ARG...: sc ARG..., each stderr line prefixed with the time
# (seconds since the start of the run) into $T/timed.err; VAR gets the
# duration of the run in seconds.
# shellcheck disable=SC2034 # last_cmd, out and err are lib.sh's sc results
run_timed() {
	local var=$1 t0 t1
	shift
	last_cmd="-c $CONF $*"
	t0=$EPOCHREALTIME
	out=$("$SLOTCTL" -c "$CONF" "$@" 2> >(
		while IFS= read -r line; do
			printf '%s %s\n' "$(bc <<<"$EPOCHREALTIME - $t0")" "$line"
		done >"$T/timed.err"
	))
	rc=$?
	t1=$EPOCHREALTIME
	# The stamping loop ends with slotctl's stderr; give it a moment.
	sleep 0.1
	err=$(cut -d' ' -f2- "$T/timed.err")
	printf -v "$var" '%.2f' "$(bc <<<"$t1 - $t0")"
}

# line_time PATTERN: seconds into the last run_timed of its first stderr
# line matching PATTERN (grep -E), or nothing.
line_time() {
	grep -E -m1 -- "$1" "$T/timed.err" | cut -d' ' -f1
}

# status_line: one line of what the live status says, for comparisons.
status_line() {
	_json_format "phase={phase} active={active_slot} a={slots.a.state}/{slots.a.version} b={slots.b.state}/{slots.b.version} result={last_result.result}" \
		"$("$SLOTCTL" -c "$CONF" --json status 2>/dev/null)"
}

# wait_state STATE [SECONDS]: waits until demo.service's ActiveState is STATE.
wait_state() {
	local want=$1
	_is_state() { [ "$(unit_state)" = "$want" ]; }
	wait_for "${2:-5}" _is_state
}

# peek FIELD: a field of the status as it is on disk. `slotctl status`
# finishes an interrupted operation when it can take the store lock; this
# holds the lock meanwhile so that status only reads.
peek() {
	jq_get "$1" "$(flock -n "$T/state/lock" "$SLOTCTL" -c "$CONF" --json status 2>/dev/null)"
}

# events_since N: the types of the events in the outbox after the first N,
# in emission order, on one line; `events_since` alone prints the count.
events_since() {
	local files
	files=$(find "$T/state/outbox" -maxdepth 1 -name '*.json' 2>/dev/null | LC_ALL=C sort)
	if [ $# -eq 0 ]; then
		printf '%s\n' "$files" | grep -c .
		return 0
	fi
	printf '%s\n' "$files" | tail -n +$(($1 + 1)) | grep . |
		xargs -r "$PYTHON" -S -c '
import json, sys
print(" ".join(json.load(open(f))["type"] for f in sys.argv[1:]))'
}

# stop_pid PID: SIGTERM to a tracked process of the test, SIGKILL after 10 s,
# then reaps it; returns its exit status.
stop_pid() {
	kill -TERM "$1" 2>/dev/null
	wait_for 10 eval '! alive '"$1" || kill -KILL "$1" 2>/dev/null
	reap_pid "$1"
}

# start_slotd: slotd -c $CONF in the background (tracked), its stderr in
# $T/slotd.log, emptied first so that nothing of an earlier run is read
# as this one's; sets slotd_pid.
start_slotd() {
	: >"$T/slotd.log"
	"$SLOTD" -c "$CONF" >"$T/slotd.out" 2>>"$T/slotd.log" &
	slotd_pid=$!
	track_pid "$slotd_pid"
}
