#!/usr/bin/env bash
# test-service.sh: the restart, verify and revert cycle of SPEC section 6
# against a real systemd (tests/integration/sdbox/), with demo-app as the
# managed service behind a socket unit. A good update commits; updates that
# exit at start, answer 500, report the wrong version, crash-loop, hang
# before READY or die soon after their first good answer are reverted in
# time; an old version broken too leaves the store degraded and stable; a
# missing unit or an unreachable bus leaves no switch behind; a slotctl
# killed during its trial is finished by the next status or by slotd; and
# switch, rollback, --no-restart and --force do what they say. Every case
# checks the active slot, current, the unit's state, the version served,
# slot states, last_result and slotctl's exit code. Prints timings.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/service/lib-service.sh
source "$(dirname "${BASH_SOURCE[0]}")/service/lib-service.sh"

make_key main
svc_box_start || finish
timings=()

# --- A good update commits ---------------------------------------------------
svc_reset || finish
check_eq "the fresh store runs 1.0.0 from slot a under systemd" \
	"slots/a active 1.0.0" "$(current_link) $(unit_state) $(served)"

P110=$(app_pkg 1.1.0 healthy)
pid_before=$(unit_prop MainPID)
run_timed t_good install "$P110"
check_rc "install of a good 1.1.0 exits 0" 0
check_eq "1.1.0 committed: b active and good, a kept good" \
	"phase=idle active=b a=good/1.0.0 b=good/1.1.0 result=completed" "$(status_line)"
check_eq "current -> slots/b" slots/b "$(current_link)"
check_eq "demo.service is active" active "$(unit_state)"
check_eq "the service serves 1.1.0" 1.1.0 "$(served)"
pid_after=$(unit_prop MainPID)
check "the service was restarted (MainPID $pid_before -> $pid_after)" \
	test "$pid_after" != "$pid_before" -a "$pid_after" != 0
check_eq "last_result names 1.0.0 -> 1.1.0 without error" "1.0.0 1.1.0 null" \
	"$(jq_get last_result.from_version) $(jq_get last_result.to_version) $(jq_get last_result.error)"
timings+=("good update 1.0.0 -> 1.1.0, install start to commit: ${t_good}s")

# --- Bad updates revert ------------------------------------------------------
# Each goes into slot a (the inactive one) and must end back on 1.1.0 in b.
# The bound: restart_timeout 3s + health timeout 4s + rollback timeout 8s.
bad_update() { # bad_update VERSION BEHAVIOUR WHAT CAUSE_REGEX
	local v=$1 what=$3 cause=$4 pkg t_run t_fail
	pkg=$(app_pkg "$v" "$2")
	run_timed t_run install "$pkg"
	check_rc "$what: install $v exits 1" 1
	check_err "$what: slotctl says it reverted" "reverted"
	if grep -Eqi "demo\.service.*($cause)|($cause).*demo\.service" <<<"$err"; then
		_pass "$what: the error names demo.service and the cause"
	else
		_fail "$what: the error names demo.service and the cause" "cause: $cause
$(_last_run)"
	fi
	echo "# $what: $(grep 'error:' <<<"$err" | tail -n1)"
	check_eq "$what: b (1.1.0) active and good, a ($v) bad, result rolled_back" \
		"phase=idle active=b a=bad/$v b=good/1.1.0 result=rolled_back" "$(status_line)"
	check_eq "$what: current -> slots/b" slots/b "$(current_link)"
	check_eq "$what: demo.service is active again" active "$(unit_state)"
	check_eq "$what: the service serves 1.1.0 again" 1.1.0 "$(served)"
	check_eq "$what: last_result is 1.1.0 <- $v with the cause" "1.1.0 $v yes" \
		"$(jq_get last_result.from_version) $(jq_get last_result.to_version) \
$(jq_get last_result.error | grep -Eqi "$cause" && echo yes || echo no)"
	check "$what: done within the timeouts (${t_run}s <= 17s)" \
		test "$(bc <<<"$t_run <= 17")" = 1
	t_fail=$(line_time 'reverting')
	if [ -n "$t_fail" ]; then
		timings+=("$(printf '%s: install start to failure %.2fs, failure to completed revert %.2fs (total %ss)' \
			"$what" "$t_fail" "$(bc <<<"$t_run - $t_fail")" "$t_run")")
	else
		timings+=("$what: total ${t_run}s (no 'reverting' line seen)")
	fi
}

bad_update 1.2.0 exit-at-start "exits at start" 'result "failed"|failed|exit'
bad_update 1.3.0 health-500 "health 500" '500'
bad_update 1.4.0 wrong-version "wrong version" '0\.0\.0-wrong'
svc_unit on-failure
bad_update 1.5.0 crash-after=0.2 "crash loop (Restart=on-failure)" 'crash loop|auto-restart|NRestarts'
bad_update 1.5.1 exit-at-start "crash loop at start (Restart=on-failure)" 'result "failed"|did not finish|crash loop|auto-restart'
svc_unit
bad_update 1.6.0 hang-at-start "hangs at start (no READY)" 'did not finish|activating'
svc_config health.settle=3s
bad_update 1.7.0 crash-after=1.5 "dies 1.5s after its first good answer (settle 3s)" 'settl|failed|inactive'
svc_config

# A slot marked bad is not switched to without --force.
sc switch a
check_rc "switch to the bad slot a exits 1" 1
check_err "the refusal says slot a is marked bad" "marked bad"
check_eq "after the refused switch current -> slots/b, 1.1.0 served" "slots/b 1.1.0" \
	"$(current_link) $(served)"

# The control of the settle case: with settle = 0s the same kind of service
# passes its checks before it dies, so settle is what caught 1.7.0.
P171=$(app_pkg 1.7.1 crash-after=1.5)
sc -q install "$P171"
check_rc "control: with settle = 0s a service that dies after 1.5 s is committed" 0

# --- The old version is broken too: degraded, and it stays so -------------------
# On a fresh store, 1.9.0 (exits at start) goes into b without a service
# to verify it, then the bad 2.0.0 is installed into a with the service
# configured: its revert to 1.9.0 fails.
svc_reset || finish
svc_config service.unit=
P190=$(app_pkg 1.9.0 exit-at-start)
sc -q install "$P190"
check_rc "without [service] unit, 1.9.0 (exits at start) installs unverified" 0
svc_config
P200=$(app_pkg 2.0.0 health-500)
run_timed t_deg install "$P200"
check_rc "install of 2.0.0 over a broken 1.9.0 exits 1" 1
check_err "slotctl says the store is degraded" "degraded"
check_err "slotctl says the rollback to 1.9.0 failed too" "rollback to 1.9.0 failed"
deg_status=$(status_line)
check_eq "degraded: b (1.9.0) active, a (2.0.0) bad, result failed" \
	"phase=degraded active=b a=bad/2.0.0 b=good/1.9.0 result=failed" "$deg_status"
check_eq "degraded: current -> slots/b" slots/b "$(current_link)"
if wait_state failed; then
	_pass "degraded: demo.service is failed"
else
	_fail "degraded: demo.service is failed" "ActiveState: $(unit_state) $(unit_prop SubState)"
fi
check_eq "degraded: nothing serves" none "$(served)"
timings+=("degraded (2.0.0 over broken 1.9.0): total ${t_deg}s")
sc status
check_rc "a second status on the degraded store exits 0" 0
check_eq "the second status shows the same store" "$deg_status" "$(status_line)"
check_eq "... and current still -> slots/b" slots/b "$(current_link)"

# slotd on the degraded store, offered 2.1.0 by a coordinator: it must not
# switch or install, and must say it waits for an operator.
P210=$(app_pkg 2.1.0 healthy)
mkdir -p "$T/www"
PYTHON=$PYTHON "$ROOT/scripts/slot-publish" -k "$T/secret/main.key" -d "$T/www" "$P210" >/dev/null
COORD_PORT=$(free_port)
"$PYTHON" -m http.server --bind 127.0.0.1 --directory "$T/www/current" "$COORD_PORT" \
	>"$T/coord.log" 2>&1 &
coord_pid=$!
track_pid "$coord_pid"
wait_for 5 curl -fsS -o /dev/null "http://127.0.0.1:$COORD_PORT/manifest" 2>/dev/null
svc_config "coordinator.manifest_url=http://127.0.0.1:$COORD_PORT/manifest" \
	agent.check_interval=1s agent.check_splay=0
links_seen=$T/links-seen
start_slotd
: >"$links_seen"
for _ in $(seq 40); do # 4 s: several polls
	current_link >>"$links_seen"
	sleep 0.1
done
check "slotd on the degraded store keeps running" alive "$slotd_pid"
check_eq "slotd never moved current in 4 s" slots/b "$(sort -u "$links_seen" | tr '\n' ' ' | sed 's/ $//')"
check_eq "slotd changed no slot" "$deg_status" "$(status_line)"
check "slotd logs that it waits for an operator" grep -qi "operator" "$T/slotd.log"
echo "# slotd said: $(grep -i -m1 operator "$T/slotd.log")"
check "slotd's log says the store is degraded" grep -qi "degraded" "$T/slotd.log"
check "slotd polled the coordinator's manifest" grep -q 'GET /manifest' "$T/coord.log"
check "slotd did not download 2.1.0" \
	bash -c "! grep -q 'packages/' '$T/coord.log'"
stop_pid "$slotd_pid"
check_eq "slotd stops with 0 on SIGTERM" 0 "$?"
stop_pid "$coord_pid"
svc_config

# --- The unit does not exist ---------------------------------------------------
svc_reset || finish
svc_config service.unit=no-such-unit.service
P110b=$(app_pkg 1.1.0 healthy)
n_events=$(events_since)
sc install "$P110b"
echo "# missing unit: events: $(events_since "$n_events")"
echo "# missing unit: $(grep "error:" <<<"$err")"
check_rc "install with a unit that does not exist exits 1" 1
check_err "the error names the missing unit" "no-such-unit.service"
check_eq "missing unit: current still -> slots/a" slots/a "$(current_link)"
check_eq "missing unit: slot a (1.0.0) still active" "a 1.0.0" \
	"$(jq_get active_slot) $(jq_get slots.a.version)"
check_eq "missing unit: no trial left behind" "null" "$(jq_get trial_slot)"
check_eq "missing unit: last_result failed or rolled_back, not completed" yes \
	"$(case $(jq_get last_result.result) in failed | rolled_back) echo yes ;; *) jq_get last_result.result ;; esac)"
check_eq "missing unit: demo.service still runs 1.0.0" "active 1.0.0" "$(unit_state) $(served)"
# Nothing showed 1.0.0 or 1.1.0 broken: only the agent could not reach the
# unit. The package must stay installable and slotd must not be blocked.
check "missing unit: the store is not left degraded" \
	test "$(jq_get phase)" != degraded
check "missing unit: 1.1.0's slot b is not marked bad (it never ran)" \
	test "$(jq_get slots.b.state)" != bad
echo "# missing unit leaves: $(status_line)"

# --- D-Bus unreachable ---------------------------------------------------------
svc_reset || finish
pid_before=$(unit_prop MainPID)
n_events=$(events_since)
DBUS_SYSTEM_BUS_ADDRESS=unix:path=$T/no-such-bus-socket sc install "$P110b"
echo "# bus unreachable: events: $(events_since "$n_events")"
echo "# bus unreachable: $(grep 'error:' <<<"$err")"
check_rc "install with the bus unreachable exits 1" 1
check_err "the error says the system bus cannot be reached" "cannot connect to the system bus"
check_eq "bus unreachable: current still -> slots/a" slots/a "$(current_link)"
check_eq "bus unreachable: slot a (1.0.0) still active" "a 1.0.0" \
	"$(jq_get active_slot) $(jq_get slots.a.version)"
check_eq "bus unreachable: no trial left behind" "null" "$(jq_get trial_slot)"
check_eq "bus unreachable: demo.service untouched (same MainPID), serves 1.0.0" \
	"active $pid_before 1.0.0" "$(unit_state) $(unit_prop MainPID) $(served)"
check "bus unreachable: the store is not left degraded" \
	test "$(jq_get phase)" != degraded
check "bus unreachable: 1.1.0's slot b is not marked bad (it never ran)" \
	test "$(jq_get slots.b.state)" != bad
echo "# bus unreachable leaves: $(status_line)"

# --- slotctl killed during its trial -------------------------------------------
# A health-check hook that sleeps 5 s once holds the trial open for a good
# version; a 500 holds it for the health timeout for a bad one.
svc_reset || finish
cat >"$HOOKS/health-check" <<EOF
#!/bin/sh
echo "\$\$ \$(cut -d' ' -f22 /proc/\$\$/stat)" >>"$T/hook-pids"
if [ -e "$T/hook-sleep" ]; then
	rm -f "$T/hook-sleep"
	touch "$T/hook-sleeping"
	exec sleep 5
fi
exit 0
EOF
chmod +x "$HOOKS/health-check"
record_pid_file "$T/hook-pids"

# kill_in_trial PKG WHEN: install PKG in the background; once WHEN
# succeeds, kill -9 slotctl.
# slotctl runs under a subshell of its own, so that its death by SIGKILL is
# no job notice of this shell.
kill_in_trial() {
	local sub pid
	rm -f "$T/killed.pid"
	{
		"$SLOTCTL" -c "$CONF" -q install "$1" >"$T/killed.out" 2>&1 &
		echo $! >"$T/killed.pid"
		wait
	} 2>/dev/null &
	sub=$!
	track_pid "$sub"
	wait_for 5 test -s "$T/killed.pid"
	pid=$(cat "$T/killed.pid")
	if ! wait_for 15 "$2"; then
		_fail "the trial window was reached (while: $2)" "$(cat "$T/killed.out")"
	fi
	kill -KILL "$pid"
	reap_pid "$sub"
	kill_recorded "$T/hook-pids" # the orphaned sleep of the hook
	rm -f "$T/hook-sleeping"
}
hook_sleeping() { [ -e "$T/hook-sleeping" ]; }
on_trial() { # on_trial SLOT: the trial of SLOT is under way
	[ "$(jq_get trial_slot)" = "$1" ] && [ "$(jq_get phase)" = verifying ]
}

touch "$T/hook-sleep"
kill_in_trial "$P110b" hook_sleeping
check_eq "killed in the trial of 1.1.0: b on trial, current -> slots/b" "trial slots/b" \
	"$(peek slots.b.state) $(current_link)"
t0=$EPOCHREALTIME
sc --json status
t_rec=$(bc <<<"$EPOCHREALTIME - $t0")
check_rc "the next status exits 0" 0
check_eq "status committed the good 1.1.0" \
	"phase=idle active=b a=good/1.0.0 b=good/1.1.0 result=completed" "$(status_line)"
check_eq "... current -> slots/b, demo.service active, serving 1.1.0" "slots/b active 1.1.0" \
	"$(current_link) $(unit_state) $(served)"
timings+=("status finishing a killed good trial (restart + verify): $(printf '%.2f' "$t_rec")s")

P120=$(app_pkg 1.2.0 health-500)
on_trial_a() { on_trial a; }
kill_in_trial "$P120" on_trial_a
check_eq "killed in the trial of the bad 1.2.0: a on trial, current -> slots/a" "trial slots/a" \
	"$(peek slots.a.state) $(current_link)"
t0=$EPOCHREALTIME
sc status
t_rec=$(bc <<<"$EPOCHREALTIME - $t0")
check_rc "the next status exits 0 (the revert left a safe store)" 0
check_eq "status reverted the bad 1.2.0" \
	"phase=idle active=b a=bad/1.2.0 b=good/1.1.0 result=rolled_back" "$(status_line)"
check_eq "... current -> slots/b, demo.service active, serving 1.1.0" "slots/b active 1.1.0" \
	"$(current_link) $(unit_state) $(served)"
timings+=("status finishing a killed bad trial (verify fails, revert): $(printf '%.2f' "$t_rec")s")

# The same, finished by slotd at start.
slotd_recovers() { # slotd_recovers: runs slotd until it says it started
	start_slotd
	t0=$EPOCHREALTIME
	if ! wait_for 20 grep -q "started for" "$T/slotd.log"; then
		_fail "slotd starts" "$(cat "$T/slotd.log")"
	fi
	t_rec=$(bc <<<"$EPOCHREALTIME - $t0")
	stop_pid "$slotd_pid"
	check_eq "slotd, started on the left trial, stops with 0 on SIGTERM" 0 "$?"
}

P130=$(app_pkg 1.3.0 healthy)
touch "$T/hook-sleep"
kill_in_trial "$P130" hook_sleeping
check_eq "killed in the trial of 1.3.0: a on trial, current -> slots/a" "trial slots/a" \
	"$(peek slots.a.state) $(current_link)"
slotd_recovers
check "slotd said it verifies the trial left behind" grep -qi "left on trial" "$T/slotd.log"
check_eq "slotd at start committed the good 1.3.0" \
	"phase=idle active=a a=good/1.3.0 b=good/1.1.0 result=completed" "$(status_line)"
check_eq "... current -> slots/a, demo.service active, serving 1.3.0" "slots/a active 1.3.0" \
	"$(current_link) $(unit_state) $(served)"
timings+=("slotd start finishing a killed good trial: $(printf '%.2f' "$t_rec")s")

P140=$(app_pkg 1.4.0 health-500)
on_trial_b() { on_trial b; }
kill_in_trial "$P140" on_trial_b
check_eq "killed in the trial of the bad 1.4.0: b on trial, current -> slots/b" "trial slots/b" \
	"$(peek slots.b.state) $(current_link)"
slotd_recovers
check_eq "slotd at start reverted the bad 1.4.0" \
	"phase=idle active=a a=good/1.3.0 b=bad/1.4.0 result=rolled_back" "$(status_line)"
check_eq "... current -> slots/a, demo.service active, serving 1.3.0" "slots/a active 1.3.0" \
	"$(current_link) $(unit_state) $(served)"
timings+=("slotd start finishing a killed bad trial: $(printf '%.2f' "$t_rec")s")
rm -f "$HOOKS/health-check"

# --- switch and rollback with slotd down ----------------------------------------
svc_reset || finish
sc -q install "$P110b"
check_rc "setup: 1.1.0 installed over 1.0.0" 0
pid_before=$(unit_prop MainPID)
sc switch a
check_rc "switch a exits 0" 0
check_eq "switch a: a active (1.0.0), both good, result completed, current -> slots/a" \
	"phase=idle active=a a=good/1.0.0 b=good/1.1.0 result=completed slots/a" "$(status_line) $(current_link)"
check_eq "switch a: demo.service active, serving 1.0.0" "active 1.0.0" "$(unit_state) $(served)"
check "switch a restarted the service" test "$(unit_prop MainPID)" != "$pid_before"

pid_before=$(unit_prop MainPID)
sc rollback
check_rc "rollback exits 0" 0
check_eq "rollback: b active (1.1.0), result rolled_back" \
	"phase=idle active=b a=good/1.0.0 b=good/1.1.0 result=rolled_back" "$(status_line)"
check_eq "rollback: current -> slots/b, demo.service active, serving 1.1.0" \
	"slots/b active 1.1.0" "$(current_link) $(unit_state) $(served)"
check "rollback restarted the service" test "$(unit_prop MainPID)" != "$pid_before"

# --no-restart moves the link only.
pid_before=$(unit_prop MainPID)
sc switch a --no-restart
check_rc "switch a --no-restart exits 0" 0
check_eq "--no-restart: current -> slots/a, a active, both good" \
	"slots/a phase=idle active=a a=good/1.0.0 b=good/1.1.0 result=completed" "$(current_link) $(status_line)"
check_eq "--no-restart: same MainPID, still serving 1.1.0" "$pid_before active 1.1.0" \
	"$(unit_prop MainPID) $(unit_state) $(served)"
sc switch b
check_rc "switch b (with restart) exits 0" 0
check_eq "switch b: serving 1.1.0 from slots/b" "slots/b 1.1.0" "$(current_link) $(served)"

# --force keeps a bad-behaving slot.
P120b=$(app_pkg 1.2.0 health-500)
sc install "$P120b"
check_rc "setup: a bad 1.2.0 is reverted" 1
check_eq "setup: a is bad (1.2.0), b active" "active=b a=bad/1.2.0" \
	"$(status_line | grep -o 'active=b a=bad/1.2.0')"
run_timed t_force switch a --force
check_rc "switch a --force to the bad-behaving slot exits 0" 0
check_eq "--force: current -> slots/a, a active" "slots/a a" "$(current_link) $(jq_get active_slot)"
check_eq "--force: demo.service active, serving 1.2.0" "active 1.2.0" "$(unit_state) $(served)"
check_eq "--force: phase idle, no trial left, a holds 1.2.0 and is no longer on trial" "idle null 1.2.0 yes" \
	"$(jq_get phase) $(jq_get trial_slot) $(jq_get slots.a.version) $(case $(jq_get slots.a.state) in trial | installed) echo no ;; *) echo yes ;; esac)"
check_err "--force: slotctl warns that the check failed" "force"
echo "# after --force: $(status_line)"

for line in "${timings[@]}"; do
	echo "# timing: $line"
done
finish
