#!/usr/bin/env bash
# test-units.sh: the shipped systemd units, as installed by `make install`,
# inside a real systemd booted in private namespaces (sdbox/sdbox.sh):
#
#  - systemd-analyze verify finds nothing to say about slotd.service,
#    slotd@.service (as slotd@demo.service), slotd.socket and the example
#    managed service;
#  - systemd-analyze security rates slotd.service (and slotd@demo.service)
#    at an overall exposure of 2.5 or lower;
#  - slotd runs under the hardened slotd.service: READY (Type=notify),
#    SIGUSR1 checks now, memory is given back after the update's burst, reload (SIGHUP) applies a new config and keeps it
#    running, and it updates a managed demo service from a coordinator (a
#    plain HTTP server with a signed manifest), restarting and verifying it,
#    then reverts a bad version by itself;
#  - slotd.socket starts slotd.service on the first connection and the
#    socket slotd is handed answers /health.
#
# The install: PREFIX=$T/prefix with DESTDIR empty, so that @BINDIR@ becomes
# a binary folder that exists inside the box (the box runs the host's
# read-only root, where /usr/bin/slotd does not exist). The units are the
# Makefile's output, unchanged; the test adds drop-ins only to point slotd
# at the test's config and store, and the socket at a free port.
#
# slotd.service has PrivateTmp=yes, which hides /tmp and /var/tmp from
# slotd: the test's folder must live elsewhere, so it defaults to /var/lib
# here (SLOTD_TEST_TMP may name another folder outside /tmp and /var/tmp).
# shellcheck disable=SC2317 # helpers run through wait_for, check and trap
case ${SLOTD_TEST_TMP:-/var/tmp} in
/tmp | /tmp/* | /var/tmp | /var/tmp/*) export SLOTD_TEST_TMP=/var/lib ;;
esac
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SDBOX=$ROOT/tests/integration/sdbox/sdbox.sh
DEMO_APP=$ROOT/tests/demo-app/demo-app.py
BOX=$T/box
UNITS=$T/units
PFX=$T/prefix
SERVE=$T/serve
EXPOSURE_TARGET=2.5
_box_up=no
_timings=()

_units_cleanup() {
	if [ "$_box_up" = yes ]; then
		"$SDBOX" stop "$BOX" >/dev/null 2>&1 || echo "# warning: sdbox stop $BOX failed" >&2
	fi
}
trap '_units_cleanup; _cleanup' EXIT

if [ "$(id -u)" -ne 0 ]; then
	echo "ok - SKIP $(basename "$0") needs root (systemd in namespaces)"
	exit 0
fi

box() { "$SDBOX" exec "$BOX" "$@"; }
now_ns() { date +%s%N; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
timing() { _timings+=("$1: $2 ms"); }
# prop UNIT PROPERTY: one property of a unit in the box.
prop() { box systemctl show -P "$2" "$1" 2>/dev/null; }
# served: the version demo.service answers, or "none".
served() {
	curl -fsS --max-time 2 "http://127.0.0.1:$APP_PORT/api/v1/version" 2>/dev/null |
		"$PYTHON" -S -c 'import json, sys; print(json.load(sys.stdin)["codebase_version"])' 2>/dev/null ||
		echo none
}
status_json() { "$SLOTCTL" -c "$CONF" --json status 2>/dev/null; }
# last_result_is RESULT VERSION: the store's last result, for wait_for.
last_result_is() {
	[ "$(_json_format '{last_result.result} {last_result.to_version}' "$(status_json)")" = "$1 $2" ]
}
unit_state_is() { [ "$(prop "$1" ActiveState)" = "$2" ]; }
unit_settled() { # the unit is neither activating nor reloading
	case $(prop "$1" ActiveState) in activating | reloading | deactivating) return 1 ;; esac
}
unit_started() { # a start ended: the unit is active or failed
	case $(prop "$1" ActiveState) in active | failed) return 0 ;; esac
	return 1
}
journal_slotd() { box journalctl -u slotd.service --no-pager -o cat 2>/dev/null; }
# journal_has PATTERN: slotd's journal holds a line matching PATTERN (ERE).
journal_has() {
	local j
	j=$(journal_slotd)
	grep -qE -- "$1" <<<"$j"
}
journal_tail() { box journalctl -u slotd.service --no-pager -n "${1:-15}" 2>/dev/null; }

# --- install, units, box -----------------------------------------------------------

t=$(now_ns)
if ! make -C "$ROOT" install DESTDIR= PREFIX="$PFX" >"$T/make.log" 2>&1; then
	_fail "make install PREFIX=\$T/prefix" "$(tail -n 30 "$T/make.log")"
	finish
fi
_pass "make install DESTDIR= PREFIX=\$T/prefix"
timing "make install" "$(ms_since "$t")"
SLOTCTL=$PFX/bin/slotctl
SLOTD_BIN=$PFX/bin/slotd

APP_PORT=$(free_port)
COORD_PORT=$(free_port)
mkdir -p "$UNITS" "$BOX" "$SERVE" "$T/state" "$T/hooks"
cp "$PFX"/lib/systemd/system/slotd.service "$PFX"/lib/systemd/system/slotd@.service \
	"$PFX"/lib/systemd/system/slotd.socket "$UNITS/"

# The example managed service, with its slot root moved into the test's
# folder (/opt/translator does not exist here); a stand-in binary there.
sed "s|/opt/translator|$T/translator|g" \
	"$PFX/share/doc/slotd/examples/translator-worker.service" >"$UNITS/translator-worker.service"
mkdir -p "$T/translator/slots/a/bin"
printf '#!/bin/sh\nexec sleep infinity\n' >"$T/translator/slots/a/bin/translator-worker"
chmod 0755 "$T/translator/slots/a/bin/translator-worker"
ln -s slots/a "$T/translator/current"

# The managed demo service, as in scripts/demo.sh: behind a socket, so a
# restart refuses no connection.
cat >"$UNITS/demo.socket" <<EOF
[Socket]
ListenStream=127.0.0.1:$APP_PORT
EOF
cat >"$UNITS/demo.service" <<EOF
[Unit]
Description=demo-app managed by slotd (integration test)
Requires=demo.socket
After=demo.socket
StartLimitIntervalSec=0

[Service]
Type=notify
ExecStart=$STORE/current/demo-app.py
EOF

t=$(now_ns)
if ! "$SDBOX" start "$BOX" "$UNITS" "$T" 2>"$T/sdbox.err"; then
	_fail "the box boots" "$(cat "$T/sdbox.err")"
	finish
fi
_box_up=yes
_pass "the box boots ($(cat "$BOX/boot-ms") ms)"
timing "box boot" "$(cat "$BOX/boot-ms")"
export DBUS_SYSTEM_BUS_ADDRESS
DBUS_SYSTEM_BUS_ADDRESS=$("$SDBOX" bus "$BOX")

# --- systemd-analyze verify -------------------------------------------------------

# MANPATH: verify checks that every Documentation=man: page exists; these
# are the pages the same install laid out.
t=$(now_ns)
for u in slotd.service slotd@demo.service slotd.socket translator-worker.service; do
	out=$(MANPATH=$PFX/share/man box systemd-analyze verify "$UNITS/$u" 2>&1)
	status=$?
	if [ "$status" -eq 0 ] && [ -z "$out" ]; then
		_pass "systemd-analyze verify $u: exit 0, no output"
	else
		_fail "systemd-analyze verify $u: exit 0, no output" "exit $status
$out"
	fi
done
timing "verify (4 units)" "$(ms_since "$t")"

# --- systemd-analyze security ------------------------------------------------------

# exposure UNIT: prints the overall exposure level; the full table in
# $T/security.UNIT.
exposure() {
	box systemd-analyze security --no-pager "$1" >"$T/security.$1" 2>&1
	sed -n "s/.*Overall exposure level for $1: \([0-9][0-9.]*\).*/\1/p" "$T/security.$1"
}
# costs UNIT: the settings that cost exposure, most expensive first.
costs() {
	grep '^✗' "$T/security.$1" | awk '{print $NF "\t" $2}' | sort -rn | head -n "${2:-8}" |
		awk -F'\t' '{printf "%s %s; ", $1, $2}' | sed 's/; $//'
}

t=$(now_ns)
for u in slotd.service slotd@demo.service; do
	level=$(exposure "$u")
	if [ -z "$level" ]; then
		_fail "systemd-analyze security $u prints an overall exposure level" \
			"$(tail -n 5 "$T/security.$u")"
		continue
	fi
	echo "# exposure level of $u: $level (target: $EXPOSURE_TARGET or lower)"
	echo "# what costs most in $u: $(costs "$u")"
	if awk -v l="$level" -v t="$EXPOSURE_TARGET" 'BEGIN { exit !(l <= t) }'; then
		_pass "$u: exposure level $level meets the target $EXPOSURE_TARGET"
	else
		_fail "$u: exposure level $level meets the target $EXPOSURE_TARGET" \
			"costs: $(costs "$u" 20)"
	fi
	[ "$u" = slotd.service ] && EXPOSURE=$level
done
timing "security (2 units)" "$(ms_since "$t")"

# --- slotd under its hardened unit ------------------------------------------------

# The release key, the packages (demo-app answering on $APP_PORT), the
# coordinator (a static HTTP server over slot-publish's folder).
make_key main
app_pkg() { # app_pkg VERSION BEHAVIOUR
	local src=$T/src/$1
	mkdir -p "$src"
	cp "$DEMO_APP" "$src/demo-app.py"
	printf 'version = %s\nbehaviour = %s\nport = %s\n' "$1" "$2" "$APP_PORT" >"$src/app.ini"
	"$PFX/bin/slot-package" -n demo-app -v "$1" -k "$T/secret/main.key" -o "$T/pkgs" "$src" >/dev/null
}
publish() { # publish VERSION
	"$PFX/bin/slot-publish" -k "$T/secret/main.key" -d "$SERVE" \
		"$T/pkgs/demo-app-$1.tar.zst" >/dev/null
}
for v in 1.0.0:healthy 1.1.0:healthy 1.2.0:health-500; do
	app_pkg "${v%%:*}" "${v#*:}" || {
		_fail "packages built" "slot-package failed for $v"
		finish
	}
done
publish 1.0.0
"$PYTHON" -m http.server --bind 127.0.0.1 --directory "$SERVE/current" "$COORD_PORT" \
	>"$T/coordinator.log" 2>&1 &
track_pid $!
coordinator_up() { curl -fsS -o /dev/null "http://127.0.0.1:$COORD_PORT/manifest" 2>/dev/null; }
wait_for 10 coordinator_up ||
	_fail "the coordinator serves the manifest" "$(cat "$T/coordinator.log")"

# $1: check_interval. No [trigger] listen: the socket test needs none.
slotd_config() {
	write_config agent.hooks_dir="$T/hooks" agent.check_interval="$1" agent.check_splay=0 \
		coordinator.manifest_url="http://127.0.0.1:$COORD_PORT/manifest" \
		service.unit=demo.service service.restart_timeout=20s \
		health.url="http://127.0.0.1:$APP_PORT/health" \
		health.version_url="http://127.0.0.1:$APP_PORT/api/v1/version" \
		health.interval=200ms health.successes=2 health.timeout=4s rollback.timeout=15s
}
slotd_config 1h

# 1.0.0 in slot a, by the operator's slotctl on the host: restarts
# demo.service in the box through its bus and verifies it.
sc -q install "$T/pkgs/demo-app-1.0.0.tar.zst"
check_rc "slotctl installs 1.0.0 and verifies demo.service in the box" 0
check_eq "demo.service serves 1.0.0" 1.0.0 "$(served)"

# Only what the test needs differs from the shipped unit: the binary and
# config, and the store and state folders writable.
mkdir -p "$UNITS/slotd.service.d"
cat >"$UNITS/slotd.service.d/test.conf" <<EOF
[Service]
ExecStart=
ExecStart=$SLOTD_BIN -c $CONF
ReadWritePaths=$STORE $T/state
EOF
box systemctl daemon-reload
level=$(exposure slotd.service)
check_eq "the test's drop-in leaves the exposure level as it was" "${EXPOSURE:-?}" "$level"

t=$(now_ns)
box systemctl start --no-block slotd.service
wait_for 20 unit_started slotd.service
start_ms=$(ms_since "$t")
if unit_state_is slotd.service active && [ "$(prop slotd.service SubState)" = running ]; then
	_pass "slotd.service reaches active/running: READY=1 under the hardened unit ($start_ms ms)"
else
	_fail "slotd.service reaches active/running: READY=1 under the hardened unit" \
		"ActiveState=$(prop slotd.service ActiveState) Result=$(prop slotd.service Result)
$(journal_tail 20)"
	finish
fi
timing "slotd.service start to READY" "$start_ms"
SLOTD_MAINPID=$(prop slotd.service MainPID)
status_text=$(prop slotd.service StatusText)
if [ -n "$status_text" ]; then
	_pass "slotd.service reports a STATUS= text: $status_text"
else
	_fail "slotd.service reports a STATUS= text" "StatusText is empty"
fi

# An update from the coordinator, asked for with SIGUSR1 (the poll period
# is an hour).
app_pid0=$(prop demo.service MainPID)
publish 1.1.0
t=$(now_ns)
box systemctl kill -s USR1 --kill-whom=main slotd.service
if wait_for 30 last_result_is completed 1.1.0; then
	ms=$(ms_since "$t")
	_pass "SIGUSR1: slotd fetches, installs, switches, restarts and verifies 1.1.0 ($ms ms)"
	timing "update 1.0.0 -> 1.1.0 (SIGUSR1 to verified)" "$ms"
else
	_fail "SIGUSR1: slotd fetches, installs, switches, restarts and verifies 1.1.0" \
		"$(status_json)
$(journal_tail 20)"
fi
check_eq "curl: demo.service serves 1.1.0" 1.1.0 "$(served)"
app_pid1=$(prop demo.service MainPID)
if [ -n "$app_pid1" ] && [ "$app_pid1" != 0 ] && [ "$app_pid1" != "$app_pid0" ]; then
	_pass "demo.service was restarted (MainPID $app_pid0 -> $app_pid1)"
else
	_fail "demo.service was restarted" "MainPID $app_pid0 -> $app_pid1"
fi
check_eq "slotctl --json status after the update" \
	"phase=idle active=b a=good/1.0.0 b=good/1.1.0 unit=demo.service/active running=1.1.0 last=completed/1.1.0" \
	"$(_json_format 'phase={phase} active={active_slot} a={slots.a.state}/{slots.a.version} b={slots.b.state}/{slots.b.version} unit={service.unit}/{service.active_state} running={service.running_version} last={last_result.result}/{last_result.to_version}' "$(status_json)")"

# The sandbox lets slotd give memory back (pagemap readable, madvise
# allowed): a second after the update's burst, its resident set is well
# below its peak (start-up and first poll). Without the release it stays
# within a few percent of it.
rss_kib() { box cat "/proc/$SLOTD_MAINPID/status" 2>/dev/null | awk -v k="$1:" '$1 == k {print $2}'; }
rss_given_back() {
	local rss hwm
	rss=$(rss_kib VmRSS)
	hwm=$(rss_kib VmHWM)
	[ -n "$rss" ] && [ -n "$hwm" ] && [ "$rss" -lt $((hwm * 3 / 4)) ]
}
if wait_for 10 rss_given_back; then
	_pass "slotd gives back what the update mapped: VmRSS $(rss_kib VmRSS) KiB, peak $(rss_kib VmHWM) KiB"
else
	_fail "slotd gives back what the update mapped" "VmRSS $(rss_kib VmRSS) KiB, peak $(rss_kib VmHWM) KiB"
fi

# Reload: a new config (poll every second) applies without a restart.
slotd_config 1s
t=$(now_ns)
box systemctl reload slotd.service
reload_rc=$?
wait_for 10 unit_settled slotd.service
timing "systemctl reload" "$(ms_since "$t")"
if [ "$reload_rc" -eq 0 ] && unit_state_is slotd.service active &&
	[ "$(prop slotd.service MainPID)" = "$SLOTD_MAINPID" ]; then
	_pass "systemctl reload (SIGHUP): slotd.service stays active, same process"
else
	_fail "systemctl reload (SIGHUP): slotd.service stays active, same process" \
		"reload exit $reload_rc, ActiveState=$(prop slotd.service ActiveState) MainPID $SLOTD_MAINPID -> $(prop slotd.service MainPID)
$(journal_tail 10)"
fi
check "slotd logged the reload" journal_has "configuration reloaded"

# The reloaded poll period applies: a bad version published after the
# reload is found by polling alone within a few periods. (Without this,
# the next check comes when the old period of an hour ends.)
sleep 1.5
publish 1.2.0
t=$(now_ns)
if wait_for 6 journal_has "worker_update_available: 1.1.0 -> 1.2.0"; then
	_pass "after the reload, the new check_interval (1s) applies: 1.2.0 found by polling ($(ms_since "$t") ms)"
else
	_fail "after the reload, the new check_interval (1s) applies: 1.2.0 found by polling" \
		"no poll within 6 s of publishing 1.2.0, though check_interval went from 1h to 1s;
the update below is asked for with SIGUSR1 instead
$(journal_tail 6)"
	box systemctl kill -s USR1 --kill-whom=main slotd.service
fi

# The bad version fails its health check and slotd reverts to 1.1.0 by
# itself.
if wait_for 40 last_result_is rolled_back 1.2.0; then
	ms=$(ms_since "$t")
	_pass "bad 1.2.0 fails its health check and slotd reverts to 1.1.0 ($ms ms)"
	timing "1.2.0 published to reverted (health timeout 4s)" "$ms"
else
	_fail "bad 1.2.0 fails its health check and slotd reverts to 1.1.0" \
		"$(status_json)
$(journal_tail 20)"
fi
check_eq "curl: demo.service serves 1.1.0 again" 1.1.0 "$(served)"
check_eq "slotctl --json status after the revert" \
	"phase=idle active=b a=bad/1.2.0 b=good/1.1.0 unit=demo.service/active running=1.1.0 last=rolled_back/1.1.0->1.2.0" \
	"$(_json_format 'phase={phase} active={active_slot} a={slots.a.state}/{slots.a.version} b={slots.b.state}/{slots.b.version} unit={service.unit}/{service.active_state} running={service.running_version} last={last_result.result}/{last_result.from_version}->{last_result.to_version}' "$(status_json)")"
# The next polls (every second now) see 1.2.0 again and leave it alone:
# another attempt would write a new last result.
before=$(_json_format '{active_slot} {slots.a.state} {last_result.result} {last_result.time}' "$(status_json)")
sleep 2.5
check_eq "later polls leave the bad version alone" \
	"$before" "$(_json_format '{active_slot} {slots.a.state} {last_result.result} {last_result.time}' "$(status_json)")"
check_eq "slotd.service ran throughout: active, same process, no restart" \
	"active $SLOTD_MAINPID 0" \
	"$(prop slotd.service ActiveState) $(prop slotd.service MainPID) $(prop slotd.service NRestarts)"

# What the sandbox refused, slotd would have logged.
denied=$(journal_slotd | grep -iE 'operation not permitted|permission denied|read-only file system|bad system call' || true)
check_eq "slotd's journal shows nothing the sandbox refused" "" "$denied"
for ev in worker_update_completed worker_update_failed worker_rollback_completed; do
	check "slotd's journal records $ev" journal_has "$ev"
done

# --- socket activation -----------------------------------------------------------

# slotd.service stopped, slotd.socket on a free port; the config has no
# [trigger] listen: the listener is the socket systemd hands over.
TRIG_PORT=$(free_port)
box systemctl stop slotd.service 2>"$T/stop.err"
mkdir -p "$UNITS/slotd.socket.d"
printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:%s\n' "$TRIG_PORT" \
	>"$UNITS/slotd.socket.d/test.conf"
box systemctl daemon-reload
box systemctl start slotd.socket
check_eq "slotd.socket listens, slotd.service is stopped" "active inactive" \
	"$(prop slotd.socket ActiveState) $(prop slotd.service ActiveState)"
# health [SECONDS]: the HTTP code and body of GET /health through the socket.
health() {
	local code
	rm -f "$T/health.body"
	code=$(curl -sS --max-time "${1:-5}" -o "$T/health.body" -w '%{http_code}' \
		"http://127.0.0.1:$TRIG_PORT/health" 2>"$T/health.err")
	printf '%s %s' "$code" "$(cat "$T/health.body" 2>/dev/null)"
}
t=$(now_ns)
answer=$(health 20)
ms=$(ms_since "$t")
check_eq "curl /health through slotd.socket: 200 {\"status\":\"ok\"}" \
	'200 {"status":"ok"}' "$answer"
timing "first /health through slotd.socket (starts slotd)" "$ms"
check_eq "the connection started slotd.service" active "$(prop slotd.service ActiveState)"
code=$(curl -sS --max-time 5 -o "$T/status.json" -w '%{http_code}' \
	"http://127.0.0.1:$TRIG_PORT/api/v1/status" 2>&1)
check_eq "GET /api/v1/status through the socket: 200, active slot b" "200 b" \
	"$code $(jq_get active_slot "$(cat "$T/status.json" 2>/dev/null)")"
# listening: the socket is in LISTEN state on the loopback port (the box
# shares the host's network).
listening() { [ -n "$(ss -Hltn "sport = :$TRIG_PORT" 2>/dev/null)" ]; }
# When slotd stops, the socket systemd holds keeps listening, and the next
# connection starts slotd again.
box systemctl stop slotd.service 2>"$T/stop.err"
if listening; then
	_pass "stopping slotd.service leaves 127.0.0.1:$TRIG_PORT listening"
else
	_fail "stopping slotd.service leaves 127.0.0.1:$TRIG_PORT listening" \
		"ss shows no listener on $TRIG_PORT though slotd.socket is $(prop slotd.socket ActiveState):
$(box journalctl -u slotd.socket --no-pager -n 4 2>/dev/null)"
fi
check_eq "after slotd stopped, /health through the socket starts it again and answers 200" \
	'200 {"status":"ok"}' "$(health 20)"
# Across a restart of slotd the socket stays open: no refused connection.
box systemctl restart --no-block slotd.service
failures=
for i in $(seq 20); do
	answer=$(health 10)
	[ "$answer" = '200 {"status":"ok"}' ] ||
		failures="$failures
request $i: ${answer:-no answer} $(cat "$T/health.err")"
	sleep 0.05
done
check_eq "20 /health requests across a restart of slotd.service: none fails" "" "${failures#$'\n'}"
wait_for 20 unit_state_is slotd.service active
check_eq "slotd.service is active again after the restart" active "$(prop slotd.service ActiveState)"
check_eq "after the restart, /health through the socket answers 200" \
	'200 {"status":"ok"}' "$(health 10)"
check_eq "slotd.socket is still listening" "active" "$(prop slotd.socket ActiveState)"

# --- stop ---------------------------------------------------------------------------

if "$SDBOX" stop "$BOX" >"$T/stop.log" 2>&1; then
	_box_up=no
	_pass "the box stops cleanly ($(cat "$BOX/stop-ms" 2>/dev/null) ms)"
	timing "box stop" "$(cat "$BOX/stop-ms" 2>/dev/null)"
else
	_fail "the box stops cleanly" "$(cat "$T/stop.log")"
fi

echo "# exposure level of slotd.service: ${EXPOSURE:-unknown} (target $EXPOSURE_TARGET)"
for line in "${_timings[@]}"; do
	echo "# timing: $line"
done
finish
