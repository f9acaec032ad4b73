#!/usr/bin/env bash
# test-events.sh: the events slotd and slotctl send upstream (SPEC section 8),
# seen by a collector (events/collector.py) that also serves the signed
# manifest and packages. A good coordinator update gives the full ordered
# sequence of valid CloudEvents; a refused local install gives
# worker_update_rejected with a reason; events survive a collector that
# fails, hangs or loses a 2xx answer, and a kill -9 of slotd; past
# [events] spool_max the oldest go and worker_events_dropped counts them.
# shellcheck disable=SC2154 # rc, out and err are set by sc (lib.sh)
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/events/helpers.sh
source "$(dirname "${BASH_SOURCE[0]}")/events/helpers.sh"

make_key main
start_collector
STATE=$T/state
# connect_timeout bounds how long one delivery attempt may take (curl's
# whole-request timeout is derived from it): 2 s keeps the hang case short.
conf_keys=(agent.check_interval=1h agent.check_splay=0
	coordinator.manifest_url="$COLL_URL/manifest.json"
	coordinator.events_url="$COLL_URL/events"
	coordinator.connect_timeout=2s)
write_config "${conf_keys[@]}"

# now: wall-clock seconds with milliseconds, the collector's clock too.
now() { date +%s.%3N; }
# elapsed START [END]: seconds between two now values, 2 decimals.
elapsed() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.2f", b - a }'; }
# lines: a list as one line, for check_eq.
lines() { tr '\n' ' ' | sed 's/ $//'; }
# outbox_ids: the ids of the events waiting in the outbox, oldest first.
outbox_ids() {
	local f
	for f in "$STATE"/outbox/*.json; do
		[ -e "$f" ] || continue
		"$PYTHON" -S -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$f"
	done
}
# times_sorted MARK: the events' times since MARK never go backwards.
times_sorted() {
	local t
	t=$(evq --from "$1" show '{time}')
	[ "$t" = "$(sort <<<"$t")" ]
}
# at_least_pending N: events_pending >= N (for wait_for).
at_least_pending() { [ "$(pending 2>/dev/null || echo 0)" -ge "$1" ]; }

UPDATE_SEQ="worker_update_available worker_update_started worker_update_downloaded worker_update_installed worker_update_switched worker_update_completed"

# --- Setup: 1.0.0 installed locally, its events delivered by slotctl --------
sc install "$(make_pkg demo-app 1.0.0)"
check_rc "slotctl install 1.0.0 exits 0" 0
check_eq "slotctl delivered its own install events (slotd is not running)" \
	"worker_update_started worker_update_installed worker_update_switched worker_update_completed" \
	"$(evq types | lines)"
check_eq "nothing is left in the outbox after slotctl's delivery pass" 0 "$(pending)"

# --- A good coordinator update through slotd --------------------------------
mark=$(log_mark)
publish 1.1.0
t0=$(now)
start_slotd
if wait_for 20 is_version 1.1.0; then
	_pass "slotd installs the offered 1.1.0 on its first poll ($(elapsed "$t0") s)"
else
	_fail "slotd installs the offered 1.1.0 on its first poll" "$(slot_summary); $(slotd_log_tail)"
fi
wait_for 10 no_pending
check_eq "the full ordered event sequence of the update" \
	"worker_agent_started $UPDATE_SEQ" "$(evq --from "$mark" types | lines)"
check "every event is valid CloudEvents 1.0 from /workers/w1 with the spec's fields" \
	evq --from "$mark" valid w1
check_eq "no event was delivered twice" "" "$(evq duplicates)"
check_eq "worker_agent_started names the active version and slot" "1.0.0 a" \
	"$(evq --from "$mark" show '{data.to_version} {data.to_slot}' | head -n 1)"
# Every update event says 1.0.0 -> 1.1.0; the slot ones say a -> b.
got=$(evq --from "$mark" show '{type} {data.from_version} {data.to_version} {data.from_slot} {data.to_slot}' | tail -n +2)
want="worker_update_available 1.0.0 1.1.0 null null
worker_update_started 1.0.0 1.1.0 a b
worker_update_downloaded 1.0.0 1.1.0 null null
worker_update_installed 1.0.0 1.1.0 a b
worker_update_switched 1.0.0 1.1.0 a b
worker_update_completed 1.0.0 1.1.0 a b"
check_eq "versions and slots are consistent across the update's events" "$want" "$got"
dur_ms=$(evq --from "$mark" field worker_update_completed data.duration_ms)
span_ms=$(evq --from "$mark" show '{arrived}' | sed -n '3p;$p' | awk 'NR==1{a=$1} NR==2{printf "%d", ($1-a)*1000 + 1000}')
check "worker_update_completed's duration_ms ($dur_ms) is > 0 and within the update's span (${span_ms} ms)" \
	test "$dur_ms" -gt 0 -a "$dur_ms" -le "$span_ms"
check "event times never go backwards" times_sorted "$mark"
check "the outbox is empty after delivery" test -z "$(outbox_ids)"
check_eq "events_last_error is null while the collector answers" null "$(jq_get events_last_error)"

# --- A refused local install: worker_update_rejected with a reason ----------
craft_tar "$T/evil.tar" file:bin/app symlink:etc-link:/etc/passwd
sign "$T/evil.tar"
mark=$(log_mark)
sc install "$T/evil.tar"
check_rc "slotctl install of a package with a symlink to /etc/passwd exits 3" 3
check_eq "the active version is still 1.1.0" 1.1.0 "$(active_version)"
wait_for 10 no_pending
check_eq "the refused install sends worker_update_started, then worker_update_rejected" \
	"worker_update_started worker_update_rejected" "$(evq --from "$mark" --first types | lines)"
reason=$(evq --from "$mark" field worker_update_rejected data.reason)
check "worker_update_rejected's reason names the entry or its target ($reason)" \
	grep -Eq 'etc-link|/etc/passwd' <<<"$reason"
check_eq "worker_update_rejected says 1.1.0 -> 9.0.0" "1.1.0 9.0.0" \
	"$(evq --from "$mark" show '{data.from_version} {data.to_version}' | tail -n 1)"
check "the refused install's events are valid CloudEvents" evq --from "$mark" valid w1
check_eq "slotctl's events, sent by slotctl and slotd both, arrive once each" "" \
	"$(evq --from "$mark" duplicates)"

# --- The collector fails (500) for a whole update, then comes back ----------
mark=$(log_mark)
collector_mode fail
publish 1.2.0
t_down=$(now)
kill -USR1 "$SLOTD_PID"
if wait_for 15 is_version 1.2.0; then
	_pass "the update to 1.2.0 completes while the collector answers 500"
else
	_fail "the update to 1.2.0 completes while the collector answers 500" "$(slot_summary); $(slotd_log_tail)"
fi
wait_for 5 at_least_pending 6
sc --json status
n=$(jq_get events_pending "$out")
check "slotctl --json status: events_pending >= 6 while the collector is down (got $n)" test "$n" -ge 6
e=$(jq_get events_last_error "$out")
check "slotctl --json status: events_last_error names the HTTP 500 and the URL ($e)" \
	contains "$e" "$COLL_URL/events" 500
sc status
check "slotctl status (text) shows the pending events and the delivery error" \
	contains "$out" "events pending" "HTTP 500"
# Stay down a few seconds: the retries must back off, not spin.
sleep "$(awk -v t="$(elapsed "$t_down")" 'BEGIN { d = 5 - t; print (d > 0 ? d : 0) }')"
collector_mode ok
t_up=$(now)
fails=$(evq --from "$mark" --outcome fail count)
gaps=$(evq --from "$mark" --outcome fail show '{arrived}' |
	awk 'NR>1 { printf "%s%.2f", sep, $1 - p; sep = " " } { p = $1 }')
check "delivery retries back off: $fails attempts in 5 s, gaps ($gaps) >= 0.45 s" \
	awk -v n="$fails" -v g="$gaps" 'BEGIN { k = split(g, a, " "); for (i = 1; i <= k; i++) if (a[i] < 0.45) exit 1; exit !(n >= 2 && n <= 6) }'
if wait_for 40 no_pending; then
	_pass "every pending event is delivered once the collector is back ($(elapsed "$t_up") s after)"
else
	_fail "every pending event is delivered once the collector is back" "pending $(pending); $(slotd_log_tail)"
fi
check_eq "the events of the update arrive in order, none missing" "$UPDATE_SEQ" \
	"$(evq --from "$mark" types | lines)"
missing=$(comm -23 <(evq --from "$mark" --outcome fail ids | sort -u) <(evq --from "$mark" ids | sort -u))
check_eq "every event refused with a 500 was delivered later with the same id" "" "$missing"
check_eq "no event was delivered twice" "" "$(evq --from "$mark" duplicates)"
check "the events sent after the outage are valid CloudEvents" evq --from "$mark" valid w1
check_eq "events_last_error is null again after delivery" null "$(jq_get events_last_error)"

# --- A lost 2xx: the event is sent again with the same id --------------------
mark=$(log_mark)
collector_mode lose
publish 1.3.0
kill -USR1 "$SLOTD_PID"
wait_for 15 is_version 1.3.0
wait_for 15 no_pending
lost=$(evq --from "$mark" --outcome lost ids)
check_eq "the collector dropped one answer" 1 "$(printf '%s' "$lost" | grep -c .)"
check_eq "the event whose 2xx was lost is the next one delivered, with the same id" "$lost" \
	"$(evq --from "$mark" ids | head -n 1)"
check_eq "after the lost answer the update's events arrive in order" "$UPDATE_SEQ" \
	"$(evq --from "$mark" types | lines)"
check_eq "the lost event was delivered exactly once more" "" "$(evq --from "$mark" duplicates)"

# --- A collector that hangs must not stall slotd ----------------------------
# The delivery in progress waits for an answer that never comes; meanwhile an
# offered update must still be picked up when asked (SIGUSR1).
mark=$(log_mark)
collector_mode hang
publish 1.4.0
kill -USR1 "$SLOTD_PID"
wait_for 15 is_version 1.4.0
hung() { [ "$(evq --from "$mark" --outcome hang count)" -ge 1 ]; }
wait_for 5 hung
publish 1.5.0
t0=$(now)
kill -USR1 "$SLOTD_PID"
if wait_for 5 is_version 1.5.0; then
	_pass "while a delivery hangs, SIGUSR1 still installs 1.5.0 ($(elapsed "$t0") s)"
else
	wait_for 20 is_version 1.5.0
	_fail "while a delivery hangs, SIGUSR1 still installs 1.5.0 within 5 s" \
		"active $(active_version) after $(elapsed "$t0") s: the delivery blocks the daemon"
fi
hung=$(evq --from "$mark" --outcome hang ids | head -n 1)
collector_mode ok
t_up=$(now)
if wait_for 40 no_pending; then
	_pass "after the hang ends every event is delivered ($(elapsed "$t_up") s)"
else
	_fail "after the hang ends every event is delivered" "pending $(pending); $(slotd_log_tail)"
fi
check_eq "the event that hung is delivered with the same id, first" "$hung" \
	"$(evq --from "$mark" ids | head -n 1)"
check_eq "both updates' events arrive in order, none missing" "$UPDATE_SEQ $UPDATE_SEQ" \
	"$(evq --from "$mark" types | lines)"

# --- kill -9 with events pending, restart with the collector up -------------
mark=$(log_mark)
collector_mode fail
publish 1.6.0
kill -USR1 "$SLOTD_PID"
wait_for 15 is_version 1.6.0
wait_for 5 at_least_pending 6
before=$(outbox_ids)
kill9_slotd
collector_mode ok
check_eq "6 events were pending when slotd was killed" 6 "$(printf '%s\n' "$before" | grep -c .)"
mark2=$(log_mark)
start_slotd
if wait_for 30 no_pending; then
	_pass "after the restart every pending event is delivered"
else
	_fail "after the restart every pending event is delivered" "pending $(pending); $(slotd_log_tail)"
fi
check_eq "the events pending at the kill arrive first, in order, with their ids" "$before" \
	"$(evq --from "$mark2" ids | head -n 6)"
check_eq "... followed by the new worker_agent_started" \
	"$UPDATE_SEQ worker_agent_started" "$(evq --from "$mark2" types | lines)"
check_eq "nothing was delivered twice across the kill" "" "$(evq --from "$mark" duplicates)"
stop_slotd

# --- spool_max = 5: the oldest go, worker_events_dropped counts them --------
write_config "${conf_keys[@]}" events.spool_max=5
collector_mode fail
mark=$(log_mark)
max=0
installs=6 # two events each: worker_update_started, worker_update_rejected
for _ in $(seq "$installs"); do
	sc install "$T/evil.tar"
	p=$(pending)
	[ "$p" -gt "$max" ] && max=$p
done
check "events_pending never went above spool_max = 5 (max seen $max)" test "$max" -le 5
check_eq "the outbox holds spool_max = 5 events" 5 "$(pending)"
collector_mode ok
mark2=$(log_mark)
start_slotd
wait_for 20 no_pending
# slotd's own worker_agent_started comes on top, written into the full outbox.
emitted=$((installs * 2 + 1))
types=$(evq --from "$mark2" types)
check "a worker_events_dropped event was delivered" grep -qx worker_events_dropped <<<"$types"
check "the events after the overflow are valid CloudEvents (dropped > 0)" evq --from "$mark2" valid w1
real=$(grep -vcx worker_events_dropped <<<"$types")
reported=$(evq --from "$mark2" show '{type} {data.dropped}' | awk '$1 == "worker_events_dropped" { s += $2 } END { print s + 0 }')
check_eq "the dropped counts add up to the events lost ($emitted emitted, $real delivered)" \
	"$((emitted - real))" "$reported"
check "the newest spool_max - 1 = 4 events survive (got $real: $(lines <<<"$types"))" test "$real" -ge 4
check "the newest event, worker_agent_started, survives" grep -qx worker_agent_started <<<"$types"
stop_slotd

finish
