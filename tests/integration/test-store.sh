#!/usr/bin/env bash
# test-store.sh: the slot store driven through slotctl, without a service:
# install into the inactive slot, switch, rollback, mark-good/-bad, status
# (text and JSON), up-to-date and downgrade rules, config errors, the store
# lock, and recovery after a kill -9 in the middle of unpacking.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

make_key main
write_config
mkdir -p "$T/extra/share"
echo "only 1.0.0 ships this" >"$T/extra/share/only-in-1.0.0"
p100=$(make_pkg demo-app 1.0.0 zstd "$T/extra")
p110=$(make_pkg demo-app 1.1.0)
p090=$(make_pkg demo-app 0.9.0)

# --- A fresh store ---------------------------------------------------------
sc --json status
check_rc "status on a fresh store exits 0" 0
check_eq "fresh store: phase idle, no active slot, both slots empty" \
	"idle none empty empty" \
	"$(jq_get phase "$out") $(jq_get active_slot "$out" | sed 's/^null$/none/') $(jq_get slots.a.state "$out") $(jq_get slots.b.state "$out")"
check_eq "fresh store: last_result is null" null "$(jq_get last_result "$out")"

# Under a name without name or version, so that only slot.ini can tell.
cp "$p100" "$T/package-under-test"
cp "$p100.minisig" "$T/package-under-test.minisig"
sc verify "$T/package-under-test"
check_rc "verify of a good package exits 0" 0
check_out "verify prints the package name" "demo-app"
check_out "verify prints the package version" "1.0.0"
check_eq "verify installs nothing" "active=null a=empty/null b=empty/null" "$(slot_summary)"

# --- Install 1.0.0, then 1.1.0 -----------------------------------------------
sc install "$p100"
check_rc "install 1.0.0 exits 0" 0
check_eq "1.0.0 went into slot a, active and good" "active=a a=good/1.0.0 b=empty/null" "$(slot_summary)"
check_eq "current is the relative symlink slots/a" slots/a "$(readlink "$STORE/current")"
check_eq "current/ serves the 1.0.0 tree" 1.0.0 "$(cat "$STORE/current/share/version" 2>&1)"
check "slot a holds the package's slot.ini" grep -q 'version = 1.0.0' "$STORE/slots/a/slot.ini"
check "bin/app kept its executable bit" test -x "$STORE/slots/a/bin/app"

# Switching to the empty slot b, or rolling back without a second good slot,
# must fail and leave a active.
sc switch b
check_rc "switch to the empty slot b exits 1" 1
check_err "the refusal names slot b" "slot b"
check_eq "after the refused switch, a is still active" slots/a "$(readlink "$STORE/current")"
sc switch b --force
check_rc "switch --force to the empty slot b exits 1 too" 1
check_eq "after the refused forced switch, current -> slots/a" slots/a "$(readlink "$STORE/current")"
sc mark-good b
sc switch b
check_rc "after mark-good on the empty slot b, a switch to it still exits 1" 1
check_eq "... and current still -> slots/a with its files" "slots/a 1.0.0" \
	"$(readlink "$STORE/current") $(cat "$STORE/current/share/version" 2>&1)"
sc rollback
check_rc "rollback with no other good slot exits 1" 1
check_eq "after the refused rollback, a is still active" "active=a a=good/1.0.0 b=empty/null" "$(slot_summary)"

sc install "$p110"
check_rc "install 1.1.0 exits 0" 0
check_out "install names the version it installed" "1.1.0"
check_out "install names the slot it installed into" "slot b"
check_eq "1.1.0 went into slot b; both slots good" "active=b a=good/1.0.0 b=good/1.1.0" "$(slot_summary)"
check_eq "current is the relative symlink slots/b" slots/b "$(readlink "$STORE/current")"
check_eq "current/ serves the 1.1.0 tree" 1.1.0 "$(cat "$STORE/current/share/version" 2>&1)"
check_eq "slot a still holds 1.0.0" 1.0.0 "$(cat "$STORE/slots/a/share/version" 2>&1)"

# --- Status, text and JSON -----------------------------------------------------
sc status
check_rc "status exits 0" 0
check_out "status text names the worker" "w1"
check_out "status text shows version 1.0.0" "1.0.0"
check_out "status text shows version 1.1.0" "1.1.0"
check "status text has a line for slot b, good, 1.1.0" \
	grep -Eq '^slot b.*good.*1\.1\.0' <<<"$out"
check "status text says phase idle" grep -Eiq 'phase.*idle' <<<"$out"

sc --json status
check_rc "status --json exits 0" 0
check "status --json is one JSON document" "$PYTHON" -S -c 'import json,sys; json.loads(sys.stdin.read())' <<<"$out"
check_eq "json worker_id" w1 "$(jq_get worker_id "$out")"
check_eq "json phase" idle "$(jq_get phase "$out")"
check_eq "json active_slot" b "$(jq_get active_slot "$out")"
check_eq "json slots.b.version" 1.1.0 "$(jq_get slots.b.version "$out")"
check_eq "json slots.a.state" good "$(jq_get slots.a.state "$out")"
check "json slots.b.installed_at is an RFC 3339 time" \
	grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}' <<<"$(jq_get slots.b.installed_at "$out")"
check_eq "json last_result: completed 1.0.0 -> 1.1.0, no error" \
	"completed 1.0.0 1.1.0 null" \
	"$(jq_get last_result.result "$out") $(jq_get last_result.from_version "$out") $(jq_get last_result.to_version "$out") $(jq_get last_result.error "$out")"
check "json has a service object" jq_get service "$out"
check_eq "json events_pending is a number" yes \
	"$(jq_get events_pending "$out" | grep -Eq '^[0-9]+$' && echo yes || echo no)"

# --- Switch and rollback ---------------------------------------------------
sc switch a
check_rc "switch a exits 0" 0
check_eq "after switch a: current -> slots/a" slots/a "$(readlink "$STORE/current")"
check_eq "after switch a: a active, both good" "active=a a=good/1.0.0 b=good/1.1.0" "$(slot_summary)"
check_eq "after switch a: current/ serves 1.0.0" 1.0.0 "$(cat "$STORE/current/share/version" 2>&1)"

sc --json switch b
check_rc "switch b (explicit) exits 0" 0
check_eq "switch --json prints the status document" "b good" \
	"$(_json_format "{active_slot} {slots.b.state}" "$out")"
check_eq "after switch b: current -> slots/b, b active" "slots/b active=b" \
	"$(readlink "$STORE/current") active=$(active_slot)"

sc switch
check_rc "switch without a slot exits 0" 0
check_eq "switch without a slot goes to the other slot (a)" a "$(active_slot)"
sc switch a
check_rc "switch to the slot already active exits 0" 0
check_eq "switch to the active slot keeps it active" slots/a "$(readlink "$STORE/current")"

sc rollback
check_rc "rollback exits 0" 0
check_eq "rollback went to the other good slot (b)" "slots/b active=b" \
	"$(readlink "$STORE/current") active=$(active_slot)"
sc rollback
check_rc "a second rollback exits 0" 0
check_eq "the second rollback went back to a" a "$(active_slot)"
sc switch b
check_rc "switch back to b exits 0" 0

# current is replaced by one rename: a reader never finds it missing or
# dangling, even while switches follow each other.
watch_current() {
	while :; do
		if ! readlink -e "$STORE/current" >/dev/null; then
			echo "current missing or dangling" >>"$T/current.watch"
		fi
	done
}
: >"$T/current.watch"
watch_current &
watch_pid=$!
track_pid "$watch_pid"
switches_ok=yes
for _ in $(seq 30); do
	"$SLOTCTL" -c "$CONF" -q switch >/dev/null 2>&1 || switches_ok=no
done
kill "$watch_pid"
reap_pid "$watch_pid"
check_eq "30 switches in a row all exit 0" yes "$switches_ok"
check_eq "a reader watching current never saw it missing or dangling" "" \
	"$(sort -u "$T/current.watch")"
check_eq "after an even number of switches b is active again" "slots/b b" \
	"$(readlink "$STORE/current") $(active_slot)"

# --- mark-bad, mark-good, --force ------------------------------------------------
sc mark-bad a
check_rc "mark-bad a exits 0" 0
check_eq "slot a is bad" bad "$(slot_state a)"
sc switch a
check_rc "switch to the bad slot a exits 1" 1
check_err "the refusal names slot a" "slot a"
check_err "the refusal is one slotctl error line" "slotctl: error: "
check_eq "after the refused switch: b still active, current -> slots/b" "slots/b active=b" \
	"$(readlink "$STORE/current") active=$(active_slot)"
sc rollback
check_rc "rollback with the other slot bad exits 1" 1
check_eq "after the refused rollback b is still active" b "$(active_slot)"

sc switch a --force
check_rc "switch a --force to the bad slot exits 0" 0
check_eq "after the forced switch: current -> slots/a" slots/a "$(readlink "$STORE/current")"
check_eq "after the forced switch: a active" a "$(active_slot)"

sc mark-good a
check_rc "mark-good a exits 0" 0
check_eq "slot a is good again" good "$(slot_state a)"
sc switch b
check_rc "switch b after mark-good exits 0" 0
check_eq "both slots good, b active" "active=b a=good/1.0.0 b=good/1.1.0" "$(slot_summary)"

sc mark-good c
check_rc "mark-good with a bad slot name exits 2" 2

# --- Same version, downgrade -------------------------------------------------
before=$(tree_sum "$STORE/slots/a")
sc install "$(make_pkg demo-app 1.1.0)"
check_rc "installing the active version again exits 0" 0
check_out "it says already up to date" "up to date"
check_eq "nothing moved" "active=b a=good/1.0.0 b=good/1.1.0" "$(slot_summary)"
check_eq "the inactive slot was not rewritten" "$before" "$(tree_sum "$STORE/slots/a")"
sc -q install "$p110"
check_eq "-q: an up-to-date install prints nothing, exits 0" "0 ''" "$rc '$out'"

sc install "$p090"
check_rc "a downgrade to 0.9.0 exits 3" 3
check_err "the refusal names the offered version" "0.9.0"
check_eq "the refused downgrade changed no slot" "active=b a=good/1.0.0 b=good/1.1.0" "$(slot_summary)"
check_eq "the refused downgrade left slot a's tree" "$before" "$(tree_sum "$STORE/slots/a")"
check_eq "last_result of the downgrade is rejected" rejected "$(jq_get last_result.result)"

write_config trust.allow_downgrade=yes
sc install "$p090"
check_rc "with allow_downgrade = yes the downgrade exits 0" 0
check_eq "0.9.0 is active in slot a" "active=a a=good/0.9.0 b=good/1.1.0" "$(slot_summary)"
check_eq "current/ serves 0.9.0" 0.9.0 "$(cat "$STORE/current/share/version" 2>&1)"
check "slot a was emptied first: no file of 1.0.0 is left" test ! -e "$STORE/slots/a/share/only-in-1.0.0"
write_config

# --- Configuration errors ------------------------------------------------------
sc_with() { # sc_with CONFIG ARG...: slotctl with another config
	local c=$1
	shift
	last_cmd="-c $c $*"
	out=$("$SLOTCTL" -c "$c" "$@" 2>"$T/.stderr")
	rc=$?
	err=$(cat "$T/.stderr")
}

sc_with "$T/no-such.conf" status
check_rc "a missing config file exits 2" 2
check_err "the error names the missing config file" "$T/no-such.conf"

cfg=$T/unknown-key.conf
{
	echo "[agent]"
	echo "worker_id = w1"
	echo "colour = blue"
	sed -n '/^state_dir/,$p' "$CONF"
} >"$cfg"
sc_with "$cfg" --json status
check_rc "an unknown key still works (exit 0)" 0
check_err "the unknown-key warning names file:line" "$cfg:3"
check_err "the unknown-key warning names the key" "colour"
check_eq "with the unknown key the store is read as usual" a "$(jq_get active_slot "$out")"

cfg=$T/bad-value.conf
{
	echo "[agent]"
	echo "worker_id = w1"
	echo "check_interval = soon"
	sed -n '/^state_dir/,$p' "$CONF"
} >"$cfg"
sc_with "$cfg" status
check_rc "check_interval = soon exits 2" 2
check_err "the error names file:line" "$cfg:3"
check_err "the error names the key" "check_interval"
check_err "the error names the value" "soon"

# More bad values, one per kind of parser: each exit 2 naming file:line.
for kv in "slots max_unpacked_size 12Q" "trust allow_downgrade maybe" "agent check_interval -5s"; do
	read -r section key value <<<"$kv"
	cfg=$T/bad-$key.conf
	write_config "$section.$key=$value"
	mv "$CONF" "$cfg"
	line=$(grep -n "^$key = " "$cfg" | cut -d: -f1)
	sc_with "$cfg" status
	check_rc "$key = $value exits 2" 2
	check_err "$key = $value: the error names file:line, key and value" "$cfg:$line"
	check_eq "$key = $value: the error names the key and the value" "yes yes" \
		"$([[ $err == *"$key"* ]] && echo yes || echo no) $([[ $err == *"$value"* ]] && echo yes || echo no)"
done
write_config

cfg=$T/no-root.conf
grep -v '^root' "$CONF" >"$cfg"
sc_with "$cfg" status
check_rc "a config without [slots] root exits 2" 2
check_err "the error says root is missing" "root"

out=$(SLOTD_CONFIG=$CONF "$SLOTCTL" --json status 2>&1)
check_eq "SLOTD_CONFIG names the config when -c is absent" w1 "$(jq_get worker_id "$out")"
out=$(SLOTD_CONFIG=$T/no-such.conf "$SLOTCTL" -c "$CONF" --json status 2>&1)
check_eq "-c overrides SLOTD_CONFIG" w1 "$(jq_get worker_id "$out")"

sc
check_rc "slotctl without a command exits 2" 2
sc frobnicate
check_rc "an unknown command exits 2" 2
check_err "the unknown command is named" "frobnicate"

# --- kill -9 in the middle of unpacking --------------------------------------
# A fresh store: 1.0.0 in a, then a ~300 MB package into b, killed once
# unpacking has begun.
STORE=$T/root2
mkdir -p "$STORE"
write_config "slots.root=$STORE" "agent.state_dir=$T/state2" slots.max_unpacked_size=1G
sc install "$p100"
check_rc "second store: install 1.0.0 exits 0" 0
tree_a=$(tree_sum "$STORE/slots/a")

big_src=$T/big-src
mkdir -p "$big_src/data"
"$PYTHON" -S - "$big_src/data" <<'PY'
import os, sys
chunk = os.urandom(100 << 10)
for i in range(3000):
    with open(os.path.join(sys.argv[1], "blob-%04d" % i), "wb") as f:
        # Distinct files without paying for 300 MB of randomness.
        f.write(i.to_bytes(4, "little") + chunk[4:])
PY
big=$("$SLOT_PACKAGE" -n demo-app -v 5.0.0 -k "$T/secret/main.key" -c none -o "$T/pkgs" "$big_src")
check "the ~300 MB package was built" test "$(stat -c %s "$big" 2>&1)" -gt 300000000
rm -rf "$big_src"
p120=$(make_pkg demo-app 1.2.0)
p600=$(make_pkg demo-app 6.0.0)

# installing: the status shows the phase or a slot "installing". A pattern
# match, not jq_get, to poll every few milliseconds.
installing() {
	local json
	json=$("$SLOTCTL" -c "$CONF" --json status 2>/dev/null)
	[[ $json =~ \"(phase|state)\":\ *\"installing\" ]]
}
# b_unpacking: slot b is being installed and files have started to land.
b_unpacking() {
	installing && [ -n "$(find "$STORE/slots/b" -mindepth 2 -print -quit 2>/dev/null)" ]
}
poll() { # poll SECONDS CMD...: like wait_for, without the sleep
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
	done
}

# --wait: a status poll may hold the lock for an instant just as the
# install starts.
"$SLOTCTL" -c "$CONF" -q --wait install "$big" >"$T/big.out" 2>&1 &
big_pid=$!
track_pid "$big_pid"
if poll 30 b_unpacking; then
	kill -9 "$big_pid"
	reap_pid "$big_pid"
	check_eq "the install reached the unpacking of slot b and died of SIGKILL" 137 "$?"
else
	_fail "the install reached the unpacking of slot b" "$(cat "$T/big.out")"
	kill -9 "$big_pid" 2>/dev/null
	reap_pid "$big_pid"
fi
check_eq "after the kill: current still -> slots/a" slots/a "$(readlink "$STORE/current")"
check_eq "after the kill: slot a's tree is intact" "$tree_a" "$(tree_sum "$STORE/slots/a")"
check_eq "after the kill: current/ serves 1.0.0" 1.0.0 "$(cat "$STORE/current/share/version" 2>&1)"

sc --json status
check_rc "status after the kill exits 0" 0
check_eq "status recovered: a active and good, b empty" \
	"a good empty null" \
	"$(jq_get active_slot "$out") $(jq_get slots.a.state "$out") $(jq_get slots.b.state "$out") $(jq_get slots.b.version "$out")"
check_eq "status recovered: phase idle" idle "$(jq_get phase "$out")"
check_eq "the half-unpacked slot b folder is empty" "" \
	"$(find "$STORE/slots/b" -mindepth 1 2>&1 | head -3)"
check_eq "recovery did not touch slot a" "$tree_a" "$(tree_sum "$STORE/slots/a")"

sc install "$p110"
check_rc "after the recovery a normal install exits 0" 0
check_eq "1.1.0 landed in b and is active" "active=b a=good/1.0.0 b=good/1.1.0" "$(slot_summary)"

# Killed again, unpacking into a; this time the first command afterwards
# is a switch to the half-unpacked slot: it must recover first and refuse.
a_unpacking() {
	installing && [ -n "$(find "$STORE/slots/a/data" -mindepth 1 -print -quit 2>/dev/null)" ]
}
"$SLOTCTL" -c "$CONF" -q --wait install "$big" >"$T/big.out" 2>&1 &
big_pid=$!
track_pid "$big_pid"
if poll 30 a_unpacking; then
	kill -9 "$big_pid"
	reap_pid "$big_pid"
	check_eq "a second install, unpacking into a, died of SIGKILL" 137 "$?"
else
	_fail "a second install reached the unpacking of slot a" "$(cat "$T/big.out")"
	kill -9 "$big_pid" 2>/dev/null
	reap_pid "$big_pid"
fi
sc switch a
check_rc "switch to the half-unpacked slot a exits 1" 1
check_err "the refusal names slot a" "slot a"
check_eq "the switch recovered first: a empty, b active" "active=b a=empty/null b=good/1.1.0" "$(slot_summary)"
check_eq "slot a's folder is empty" "" "$(find "$STORE/slots/a" -mindepth 1 2>&1 | head -3)"
check_eq "current still -> slots/b" slots/b "$(readlink "$STORE/current")"

# --- The store lock ------------------------------------------------------------
# The big package installs into a while two more installs arrive.
"$SLOTCTL" -c "$CONF" -q --wait install "$big" >"$T/big.out" 2>&1 &
big_pid=$!
track_pid "$big_pid"
# The lock file is the one slotctl names when busy; probing it with
# flock(1) tells when the first install holds it, from its first instant.
lock_held() { ! flock -n "$T/state2/lock" true; }
check "the big install holds the store lock" poll 30 lock_held

sc install "$p120"
check_rc "a second install while one runs exits 75" 75
check_err "the busy message mentions the lock" "lock"

sc --wait install "$p600"
check_rc "a second install with --wait waits, then exits 0" 0
reap_pid "$big_pid"
check_eq "the first (big) install exited 0" 0 "$?"
check_eq "the waiting install ran after the big one: 5.0.0 in a, 6.0.0 in b, b active" \
	"active=b a=good/5.0.0 b=good/6.0.0" "$(slot_summary)"
check_eq "current/ serves 6.0.0" 6.0.0 "$(cat "$STORE/current/share/version" 2>&1)"

finish
