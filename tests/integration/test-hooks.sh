#!/usr/bin/env bash
# test-hooks.sh: the hooks of SPEC section 7 around a real restart and
# verification (tests/integration/sdbox/, demo-app as the service). Every
# hook point runs, operator hooks before the package's own, each with the
# SLOTD_* environment of its step and nothing of slotctl's; a failing
# post-install, pre-switch, post-switch or health-check hook fails its step
# with the outcome the contract names; a hook past [agent] hook_timeout is
# killed with its children; hook output reaches slotctl's stderr only on a
# terminal.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/service/lib-service.sh
source "$(dirname "${BASH_SOURCE[0]}")/service/lib-service.sh"

POINTS="pre-install post-install pre-switch post-switch health-check post-commit pre-rollback post-rollback"
LOG=$T/hooks.log
ENVS=$T/hook-env
CTL=$T/hook-ctl
mkdir -p "$ENVS" "$CTL"

# recorder WHO: a hook that logs one line of its environment, keeps its
# whole environment in $ENVS/WHO-HOOK, and exits 1 when $CTL/fail-HOOK
# names the version being moved to (operator hooks only).
recorder() {
	cat <<EOF
#!/bin/sh
echo "$1 \$SLOTD_HOOK from=\$SLOTD_FROM_SLOT to=\$SLOTD_TO_SLOT fromv=\$SLOTD_FROM_VERSION tov=\$SLOTD_TO_VERSION dir=\$SLOTD_SLOT_DIR worker=\$SLOTD_WORKER_ID" >>"$LOG"
env >"$ENVS/$1-\$SLOTD_HOOK"
if [ "$1" = op ] && [ -f "$CTL/fail-\$SLOTD_HOOK" ] &&
	[ "\$(cat "$CTL/fail-\$SLOTD_HOOK")" = "\$SLOTD_TO_VERSION" ]; then
	echo "failing as told"
	exit 1
fi
exit 0
EOF
}

install_operator_hooks() {
	local p
	for p in $POINTS; do
		recorder op >"$HOOKS/$p"
		chmod +x "$HOOKS/$p"
	done
}

# expect_log DESCRIPTION LINE...: the hooks that ran since the last
# expect_log, in order, with their environment.
expect_log() {
	local desc=$1 want
	shift
	want=$(printf '%s\n' "$@")
	check_eq "$desc" "$want" "$(cat "$LOG" 2>/dev/null)"
	: >"$LOG"
}

# line WHO HOOK FROM TO FROMV TOV: a log line as the recorder writes it.
line() {
	echo "$1 $2 from=$3 to=$4 fromv=$5 tov=$6 dir=$STORE/slots/$4 worker=w1"
}

make_key main
svc_box_start || finish
svc_reset || finish

# --- The first install into an empty store: no "from" ---------------------------
box systemctl stop demo.service 2>/dev/null
rm -rf "$STORE" "$T/state"
mkdir -p "$STORE"
install_operator_hooks
sc install "$P100"
check_rc "first install of 1.0.0 with operator hooks exits 0" 0
check_eq "1.0.0 committed in slot a" "phase=idle active=a a=good/1.0.0 b=empty/null result=completed" \
	"$(status_line)"
L() { line "$1" "$2" "" a "" 1.0.0; }
expect_log "first install: every install point, with empty SLOTD_FROM_SLOT and SLOTD_FROM_VERSION" \
	"$(L op pre-install)" "$(L op post-install)" "$(L op pre-switch)" "$(L op post-switch)" \
	"$(L op health-check)" "$(L op post-commit)"

pkg_hooks=$T/pkg-hooks
mkdir -p "$pkg_hooks"
for p in $POINTS; do
	recorder pkg >"$pkg_hooks/$p"
	chmod +x "$pkg_hooks/$p"
done

# --- A good update: every point of an install, in order --------------------------
P110=$(app_pkg 1.1.0 healthy "$pkg_hooks")
: >"$LOG"
export HOOK_TEST_LEAK=from-the-caller
sc install "$P110"
unset HOOK_TEST_LEAK
check_rc "install 1.1.0 with operator and package hooks exits 0" 0
check_eq "1.1.0 committed" "phase=idle active=b a=good/1.0.0 b=good/1.1.0 result=completed" \
	"$(status_line)"
L() { line "$1" "$2" a b 1.0.0 1.1.0; }
expect_log "install: pre-install (operator only), then post-install, pre-switch, post-switch, health-check, post-commit, each operator before package" \
	"$(L op pre-install)" \
	"$(L op post-install)" "$(L pkg post-install)" \
	"$(L op pre-switch)" "$(L pkg pre-switch)" \
	"$(L op post-switch)" "$(L pkg post-switch)" \
	"$(L op health-check)" "$(L pkg health-check)" \
	"$(L op post-commit)" "$(L pkg post-commit)"

extra_env=$(grep -v -E '^(SLOTD_[A-Z_]+|PATH|PWD|SHLVL|_)=' "$ENVS/op-pre-install")
check_eq "a hook's environment holds only SLOTD_* (and PATH), nothing of slotctl's" "" "$extra_env"
check "SLOTD_HOOK_PATH names the hook run" grep -qx "SLOTD_HOOK_PATH=$HOOKS/pre-install" "$ENVS/op-pre-install"
check "a package hook runs from the slot's hooks/" \
	grep -qx "SLOTD_HOOK_PATH=$STORE/slots/b/hooks/post-commit" "$ENVS/pkg-post-commit"

# --- rollback and switch ----------------------------------------------------------
sc rollback
check_rc "rollback to 1.0.0 exits 0" 0
L() { line "$1" "$2" b a 1.1.0 1.0.0; }
expect_log "rollback: pre-rollback, pre-switch, post-switch, health-check, post-rollback (slot a has no package hooks)" \
	"$(L op pre-rollback)" "$(L op pre-switch)" "$(L op post-switch)" \
	"$(L op health-check)" "$(L op post-rollback)"
sc switch b
check_rc "switch b exits 0" 0
L() { line "$1" "$2" a b 1.0.0 1.1.0; }
expect_log "switch to b: pre-switch, post-switch, health-check, post-commit, with b's package hooks" \
	"$(L op pre-switch)" "$(L pkg pre-switch)" "$(L op post-switch)" "$(L pkg post-switch)" \
	"$(L op health-check)" "$(L pkg health-check)" "$(L op post-commit)" "$(L pkg post-commit)"
sc switch a --no-restart
check_rc "switch a --no-restart exits 0" 0
L() { line "$1" "$2" b a 1.1.0 1.0.0; }
expect_log "switch --no-restart: no health-check hook (nothing is verified)" \
	"$(L op pre-switch)" "$(L op post-switch)" "$(L op post-commit)"
sc -q switch b
: >"$LOG"

# --- Failing hooks ------------------------------------------------------------------
# post-install fails: the slot's previous tree (1.0.0) comes back.
P130=$(app_pkg 1.3.0 healthy)
echo 1.3.0 >"$CTL/fail-post-install"
pid_before=$(unit_prop MainPID)
sc install "$P130"
check_rc "failing post-install: install exits 1" 1
check_err "failing post-install: the error names the hook" "post-install"
check_eq "failing post-install: slot a is 1.0.0 and good again, b active, result failed" \
	"phase=idle active=b a=good/1.0.0 b=good/1.1.0 result=failed" "$(status_line)"
check_eq "failing post-install: slot a holds the 1.0.0 tree again" \
	"1.0.0 version = 1.0.0" \
	"$(cat "$STORE/slots/a/share/version" 2>&1) $(grep '^version' "$STORE/slots/a/app.ini" 2>&1)"
check_eq "failing post-install: current -> slots/b, service untouched, serving 1.1.0" \
	"slots/b $pid_before 1.1.0" "$(current_link) $(unit_prop MainPID) $(served)"
L() { line "$1" "$2" b a 1.1.0 1.3.0; }
expect_log "failing post-install: nothing runs after it" "$(L op pre-install)" "$(L op post-install)"
rm -f "$CTL/fail-post-install"

# pre-switch fails: current untouched, the new package's slot marked bad.
echo 1.3.0 >"$CTL/fail-pre-switch"
sc install "$P130"
check_rc "failing pre-switch: install exits 1" 1
check_err "failing pre-switch: the error names the hook" "pre-switch"
check_eq "failing pre-switch: a (1.3.0) bad, b active, result failed" \
	"phase=idle active=b a=bad/1.3.0 b=good/1.1.0 result=failed" "$(status_line)"
check_eq "failing pre-switch: current -> slots/b, service untouched, serving 1.1.0" \
	"slots/b $pid_before active 1.1.0" \
	"$(current_link) $(unit_prop MainPID) $(unit_state) $(served)"
expect_log "failing pre-switch: no post-switch, no health-check" \
	"$(L op pre-install)" "$(L op post-install)" "$(L op pre-switch)"
rm -f "$CTL/fail-pre-switch"

# health-check fails for 1.4.0 only: reverted, with the rollback hooks of
# the move back from a to b (b's package hooks run too).
P140=$(app_pkg 1.4.0 healthy)
echo 1.4.0 >"$CTL/fail-health-check"
sc install "$P140"
check_rc "failing health-check: install exits 1" 1
check_err "failing health-check: slotctl says it reverted" "reverted"
check_err "failing health-check: the error names the hook" "health-check"
check_eq "failing health-check: a (1.4.0) bad, b (1.1.0) active, result rolled_back" \
	"phase=idle active=b a=bad/1.4.0 b=good/1.1.0 result=rolled_back" "$(status_line)"
check_eq "failing health-check: current -> slots/b, active, serving 1.1.0" \
	"slots/b active 1.1.0" "$(current_link) $(unit_state) $(served)"
L() { line "$1" "$2" b a 1.1.0 1.4.0; }
R() { line "$1" "$2" a b 1.4.0 1.1.0; }
expect_log "failing health-check: the revert runs pre-rollback, the old slot's health-check, post-rollback" \
	"$(L op pre-install)" "$(L op post-install)" "$(L op pre-switch)" "$(L op post-switch)" \
	"$(L op health-check)" \
	"$(R op pre-rollback)" "$(R pkg pre-rollback)" \
	"$(R op health-check)" "$(R pkg health-check)" \
	"$(R op post-rollback)" "$(R pkg post-rollback)"
rm -f "$CTL/fail-health-check"

# post-switch fails: reverted as well.
P150=$(app_pkg 1.5.0 healthy)
echo 1.5.0 >"$CTL/fail-post-switch"
sc install "$P150"
check_rc "failing post-switch: install exits 1" 1
check_err "failing post-switch: slotctl says it reverted" "reverted"
check_err "failing post-switch: the error names the hook" "post-switch"
check_eq "failing post-switch: a (1.5.0) bad, b active, result rolled_back" \
	"phase=idle active=b a=bad/1.5.0 b=good/1.1.0 result=rolled_back" "$(status_line)"
check_eq "failing post-switch: current -> slots/b, active, serving 1.1.0" \
	"slots/b active 1.1.0" "$(current_link) $(unit_state) $(served)"
rm -f "$CTL/fail-post-switch"
: >"$LOG"

# --- hook_timeout ---------------------------------------------------------------------
svc_config agent.hook_timeout=1s
cat >"$HOOKS/pre-install" <<EOF
#!/bin/sh
sleep 30 &
echo "\$! \$(cut -d' ' -f22 /proc/\$!/stat)" >>"$T/slow-pids"
echo "\$\$ \$(cut -d' ' -f22 /proc/\$\$/stat)" >>"$T/slow-pids"
exec sleep 30
EOF
chmod +x "$HOOKS/pre-install"
record_pid_file "$T/slow-pids"
P160=$(app_pkg 1.6.0 healthy)
t0=$EPOCHREALTIME
sc install "$P160"
t_hook=$(bc <<<"$EPOCHREALTIME - $t0")
check_rc "a pre-install hook past hook_timeout = 1s: install exits 1" 1
check_err "the error says the hook did not finish in time" "did not finish within 1 s"
check "slotctl gave up on it in time (${t_hook}s < 5s)" test "$(bc <<<"$t_hook < 5")" = 1
gone() { # gone FILE: no process recorded in FILE is alive
	local pid start
	while read -r pid start; do
		alive "$pid" && [ "$(cut -d' ' -f22 "/proc/$pid/stat" 2>/dev/null)" = "$start" ] && return 1
	done <"$1"
	return 0
}
check_eq "the hook recorded itself and its child" 2 "$(wc -l <"$T/slow-pids" 2>/dev/null)"
check "the hook and its child were killed" wait_for 3 gone "$T/slow-pids"
check_eq "the overrun changed nothing: b active with 1.1.0" \
	"phase=idle active=b b=good/1.1.0 slots/b 1.1.0" \
	"$(status_line | sed 's/ a=[^ ]*//; s/ result=.*//') $(current_link) $(served)"
svc_config

# --- Hook output: the terminal or the journal -------------------------------------------
cat >"$HOOKS/pre-install" <<'EOF'
#!/bin/sh
echo "hook-says-hello-on-stdout"
echo "hook-says-hello-on-stderr" >&2
exit 1
EOF
chmod +x "$HOOKS/pre-install"
P170=$(app_pkg 1.7.0 healthy)
sc install "$P170"
check_rc "a failing pre-install hook that talks: install exits 1" 1
check "without a terminal, no hook output on slotctl's stdout" \
	bash -c '! grep -q hook-says-hello <<<"$1"' _ "$out"
check "without a terminal, no hook output on slotctl's stderr (it goes to the journal)" \
	bash -c '! grep -q hook-says-hello <<<"$1"' _ "$err"
tty_out=$(script -qec "$SLOTCTL -c $CONF install $P170 >$T/tty.stdout" /dev/null 2>&1)
check "on a terminal, the hook's stdout line reaches slotctl's stderr" \
	grep -q "pre-install: hook-says-hello-on-stdout" <<<"$tty_out"
check "on a terminal, the hook's stderr line reaches slotctl's stderr" \
	grep -q "pre-install: hook-says-hello-on-stderr" <<<"$tty_out"
check "on a terminal, nothing of the hook goes to stdout" \
	bash -c '! grep -q hook-says-hello "$1"' _ "$T/tty.stdout"
check_eq "the failing pre-install changed nothing" "phase=idle active=b b=good/1.1.0 slots/b" \
	"$(status_line | sed 's/ a=[^ ]*//; s/ result=.*//') $(current_link)"

finish
