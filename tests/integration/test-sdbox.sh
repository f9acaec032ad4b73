#!/usr/bin/env bash
# test-sdbox: self-test of the sdbox harness (tests/integration/sdbox/).
# Boots a box, runs tests/demo-app/demo-app.py in it as a socket-activated
# unit from a folder of the host's /tmp, drives it over the box's system bus
# from the host, stops the box, and checks that the host kept its /tmp,
# mounts, hostname, sysctls and cgroups and that nothing of the box remains.
# Prints TAP lines; exits 1 when a check fails. Needs root.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sdbox=$here/sdbox/sdbox.sh
demo_app=$here/../demo-app/demo-app.py

n=0
failed=0
ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	[[ $# -gt 1 ]] && printf '%s\n' "${@:2}" | sed 's/^/#   /'
	return 0
}
# check DESCRIPTION CMD...: one TAP line for the command's success.
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc" "${out:-"(no output)"}"
	fi
}
# until_true SECONDS CMD...: retries CMD until it succeeds or time is up.
until_true() {
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS <= end)) || return 1
		sleep 0.02
	done
}

if [[ $(id -u) -ne 0 ]]; then
	echo "1..0 # SKIP test-sdbox needs root"
	exit 0
fi

# The work folder lives under the host's /tmp on purpose: the box mounts its
# own /tmp, so this also tests that bind dirs stay visible.
work=$(mktemp -d /tmp/sdbox-test.XXXXXX)
sentinel=$(mktemp /tmp/sdbox-sentinel.XXXXXX)
state=$work/box
units=$work/units
root=$work/translator
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
box_pid=
box_pidns=
box_cgroup=
bg_exec=

cleanup() {
	"$sdbox" stop "$state" >/dev/null 2>&1
	[[ -n $bg_exec ]] && kill "$bg_exec" 2>/dev/null
	rm -rf "$work"
	rm -f "$sentinel"
}
trap cleanup EXIT

host_mounts() { findmnt -rn -o TARGET,FSTYPE,SOURCE; }
mounts_before=$(host_mounts)
hostname_before=$(hostname)
sysctl_before=$(sysctl -n fs.file-max fs.nr_open)

# A slot store as slotd keeps it: slots/a and slots/b, current -> slots/a.
for slot in a:1.1.0 b:1.2.0; do
	mkdir -p "$root/slots/${slot%%:*}"
	cp "$demo_app" "$root/slots/${slot%%:*}/demo-app.py"
	printf 'version = %s\nbehaviour = healthy\nport = %s\n' "${slot#*:}" "$port" \
		>"$root/slots/${slot%%:*}/app.ini"
done
ln -s slots/a "$root/current"

mkdir -p "$units"
cat >"$units/demo.socket" <<EOF
[Socket]
ListenStream=127.0.0.1:$port
EOF
cat >"$units/demo.service" <<EOF
[Unit]
Description=demo-app for test-sdbox
Requires=demo.socket
After=demo.socket
StartLimitIntervalSec=0

[Service]
Type=notify
ExecStart=$root/current/demo-app.py
EOF

# --- boot --------------------------------------------------------------------

t0=$EPOCHREALTIME
if "$sdbox" start "$state" "$units" "$work"; then
	ok "box boots in $(printf '%.2f' "$(bc <<<"$EPOCHREALTIME - $t0")")s"
else
	not_ok "box boots"
	echo "1..$n"
	exit 1
fi
box_pid=$("$sdbox" pid "$state")
box_pidns=$(stat -L -c %i "/proc/$box_pid/ns/pid")
box_cgroup=$(cat "$state/cgroup")
bus=$("$sdbox" bus "$state")
sdbus() { busctl --address="$bus" "$@"; }

inside() { "$sdbox" exec "$state" "$@"; }
system_running() { [[ $(inside systemctl is-system-running) == running ]]; }
exit_code_passes() {
	inside sh -c 'exit 7'
	[[ $? == 7 ]]
}
own_hostname() { [[ $(inside hostname) == sdbox && $(hostname) != sdbox ]]; }

check "systemd inside reports running" system_running
check "exec returns the command's exit code" exit_code_passes
check "the box has its own hostname" own_hostname
check "the bind dir under the host's /tmp is visible inside" \
	inside test -x "$root/current/demo-app.py"
check "the host's /tmp is not visible inside" inside test ! -e "$sentinel"
check "writes to /tmp and /etc inside stay inside" \
	inside touch /tmp/sdbox-inner /etc/sdbox-inner
check "the host's / is read-only inside" \
	inside sh -c '! touch /sdbox-inner 2>/dev/null'

# --- a unit, driven from the host over the box's bus ------------------------

unit_path=/org/freedesktop/systemd1/unit/demo_2eservice
active_state() {
	sdbus get-property org.freedesktop.systemd1 "$unit_path" \
		org.freedesktop.systemd1.Unit ActiveState
}
main_pid() {
	sdbus get-property org.freedesktop.systemd1 "$unit_path" \
		org.freedesktop.systemd1.Service MainPID | cut -d' ' -f2
}
version() {
	curl -fsS --max-time 2 "http://127.0.0.1:$port/api/v1/version"
}

check "daemon-reload picks up the test's units" inside systemctl daemon-reload
check "StartUnit over the bus from the host" \
	sdbus call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
	org.freedesktop.systemd1.Manager StartUnit ss demo.service replace
is_active() { [[ $(active_state) == 's "active"' ]]; }
check "demo.service is active" until_true 5 is_active
check "systemctl inside agrees" inside systemctl is-active demo.service
out=$(version 2>&1)
if [[ $out == *'"codebase_version":"1.1.0"'* ]]; then
	ok "curl from the host reaches the unit (1.1.0)"
else
	not_ok "curl from the host reaches the unit (1.1.0)" "$out"
fi

pid_before=$(main_pid)
ln -sfn slots/b "$root/current.new" && mv -T "$root/current.new" "$root/current"
check "RestartUnit over the bus from the host" \
	sdbus call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
	org.freedesktop.systemd1.Manager RestartUnit ss demo.service replace
restarted() {
	local pid
	pid=$(main_pid)
	[[ $pid != 0 && $pid != "$pid_before" ]] && is_active
}
check "demo.service came back with a new MainPID" until_true 5 restarted
out=$(version 2>&1)
if [[ $out == *'"codebase_version":"1.2.0"'* ]]; then
	ok "the restarted unit serves the new slot (1.2.0)"
else
	not_ok "the restarted unit serves the new slot (1.2.0)" "$out"
fi

# A command left running inside must not hold the stop up.
"$sdbox" exec "$state" sleep 600 &
bg_exec=$!
until_true 2 inside pgrep -x sleep

# --- stop --------------------------------------------------------------------

t0=$EPOCHREALTIME
if "$sdbox" stop "$state"; then
	ok "box stops in $(printf '%.2f' "$(bc <<<"$EPOCHREALTIME - $t0")")s"
else
	not_ok "box stops"
fi
check "stop is idempotent" "$sdbox" stop "$state"
exited() {
	local st
	st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 0
	[[ $st == Z ]]
}
check "the exec'd command ended with the box" until_true 2 exited "$bg_exec"
wait "$bg_exec" 2>/dev/null
bg_exec=
check "the host's /tmp still has its sentinel" test -f "$sentinel"
check "nothing written inside reached the host" \
	test ! -e /tmp/sdbox-inner -a ! -e /etc/sdbox-inner -a ! -e /sdbox-inner
leftover=$(stat -L -c '%i %n' /proc/[0-9]*/ns/pid 2>/dev/null | awk -v i="$box_pidns" '$1 == i')
if [[ -z $leftover ]]; then
	ok "no process of the box remains"
else
	not_ok "no process of the box remains" "$leftover"
fi
check "the box's cgroup is gone" test ! -e "$box_cgroup"
mounts_after=$(host_mounts)
box_mounts=$(grep -E " sdbox-|^${work//./\\.}[/ ]" <<<"$mounts_after")
if [[ -z $box_mounts ]]; then
	ok "no mount of the box shows on the host"
else
	not_ok "no mount of the box shows on the host" "$box_mounts"
fi
# Other tests that mount things on the host at the same time make this one
# fail; the diff says whose mounts they are.
if [[ $(sort <<<"$mounts_after") == "$(sort <<<"$mounts_before")" ]]; then
	ok "the host's mount table is unchanged"
else
	not_ok "the host's mount table is unchanged" \
		"$(diff <(echo "$mounts_before") <(echo "$mounts_after") | grep '^[<>]')"
fi
check "the host's hostname is unchanged" test "$(hostname)" = "$hostname_before"
check "the host's fs.file-max and fs.nr_open are unchanged" \
	test "$(sysctl -n fs.file-max fs.nr_open)" = "$sysctl_before"

echo "1..$n"
[[ $failed -eq 0 ]]
