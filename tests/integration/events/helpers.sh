# shellcheck shell=bash
# helpers.sh: what test-events.sh and test-listener.sh share, sourced after
# lib.sh. It plays the coordinator (collector.py: event collector and static
# file server for the signed manifest and packages) and runs slotd.
#
#   start_collector                  starts collector.py; sets $COLL_PORT,
#                                    $COLL_URL, $COLL_LOG, $COORD (its file root)
#   collector_mode ok|fail|hang|lose how the collector answers POSTs from now on
#   log_mark                         the number of POSTs recorded so far
#   evq CMD [ARG...]                 events/evq.py on the collector's log
#   publish VERSION                  builds, signs and offers demo-app VERSION
#   start_slotd                      starts slotd -c $CONF in the background
#                                    ($SLOTD_PID, log $T/slotd.log)
#   stop_slotd                       SIGTERM, waits for it
#   kill9_slotd                      SIGKILL, waits for it
#   active_version                   the active slot's version (slotctl status)
#   pending                          events_pending (slotctl status)

EVENTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COLLECTOR=$EVENTS_DIR/collector.py
COORD=$T/coord
COLL_LOG=$T/collector.jsonl
COLL_CTL=$T/collector.mode
SLOTD_PID=
COLL_PID=

start_collector() {
	mkdir -p "$COORD/packages"
	rm -f "$T/collector.port"
	"$PYTHON" "$COLLECTOR" --log "$COLL_LOG" --control "$COLL_CTL" --root "$COORD" \
		--port-file "$T/collector.port" 2>"$T/collector.err" &
	COLL_PID=$!
	track_pid "$COLL_PID"
	wait_for 10 test -s "$T/collector.port" || {
		echo "not ok - the collector did not start"
		cat "$T/collector.err"
		exit 1
	}
	COLL_PORT=$(cat "$T/collector.port")
	# shellcheck disable=SC2034 # used by the tests
	COLL_URL=http://127.0.0.1:$COLL_PORT
}

collector_mode() {
	printf '%s\n' "$1" >"$COLL_CTL.tmp" && mv -f "$COLL_CTL.tmp" "$COLL_CTL"
}

log_mark() {
	if [ -f "$COLL_LOG" ]; then wc -l <"$COLL_LOG"; else echo 0; fi
}

evq() {
	"$PYTHON" -S "$EVENTS_DIR/evq.py" "$COLL_LOG" "$@"
}

# publish VERSION: a signed package of demo-app VERSION under $COORD/packages
# and a signed manifest $COORD/manifest.json offering it.
publish() {
	local version=$1 pkg base
	pkg=$(make_pkg demo-app "$version") || return 1
	base=$(basename "$pkg")
	cp "$pkg" "$pkg.minisig" "$COORD/packages/" || return 1
	"$PYTHON" -S - "$COORD/packages/$base" "$version" "$COORD/manifest.json" <<'PY' || return 1
import hashlib, json, os, sys
pkg, version, out = sys.argv[1:4]
with open(pkg, "rb") as f:
    data = f.read()
doc = {"name": "demo-app", "version": version,
       "url": "packages/" + os.path.basename(pkg), "size": len(data),
       "sha256": hashlib.sha256(data).hexdigest(),
       "expires": "2099-12-31T00:00:00Z"}
with open(out + ".tmp", "w") as f:
    json.dump(doc, f)
os.replace(out + ".tmp", out)
PY
	rm -f "$COORD/manifest.json.minisig"
	sign "$COORD/manifest.json"
}

start_slotd() {
	"$SLOTD" -c "$CONF" >>"$T/slotd.log" 2>&1 &
	SLOTD_PID=$!
	track_pid "$SLOTD_PID"
}

stop_slotd() {
	[ -n "$SLOTD_PID" ] || return 0
	kill -TERM "$SLOTD_PID" 2>/dev/null
	reap_pid "$SLOTD_PID"
	SLOTD_PID=
}

kill9_slotd() {
	[ -n "$SLOTD_PID" ] || return 0
	kill -KILL "$SLOTD_PID" 2>/dev/null
	reap_pid "$SLOTD_PID"
	SLOTD_PID=
}

active_version() {
	local a
	a=$(jq_get active_slot) || return 1
	[ "$a" != null ] || { echo none; return 0; }
	jq_get "slots.$a.version"
}

pending() {
	jq_get events_pending
}

# slotd_alive: slotd still runs (did not exit on its own).
slotd_alive() {
	[ -n "$SLOTD_PID" ] && kill -0 "$SLOTD_PID" 2>/dev/null
}

# is_version V: the active version is V (for wait_for).
is_version() {
	[ "$(active_version 2>/dev/null)" = "$1" ]
}

# no_pending: the outbox is empty (for wait_for).
no_pending() {
	[ "$(pending 2>/dev/null)" = 0 ]
}

# contains TEXT FRAGMENT...: TEXT holds every FRAGMENT, in this order.
contains() {
	local text=$1 f
	shift
	for f in "$@"; do
		[[ $text == *"$f"* ]] || return 1
		text=${text#*"$f"}
	done
}

# slotd_log_tail: the last lines slotd wrote, for a failure report.
slotd_log_tail() {
	tail -n 20 "$T/slotd.log" 2>/dev/null
}
