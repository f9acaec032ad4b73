#!/usr/bin/env bash
# test-listener.sh: slotd's trigger listener (SPEC section 9) over HTTPS,
# with a test CA, a server certificate and client certificates made by
# openssl here, and a bearer token. Unauthenticated, malformed, oversized,
# unknown and wrong-method requests get 4xx and change nothing; a token or a
# client certificate from the configured CA triggers an update the
# coordinator offers; 409 while the store lock is held; the listener keeps
# serving under 200 idle connections and a slow client; /metrics and
# /api/v1/status say what slotd and slotctl say; a non-loopback listener
# without authentication is a config error.
# shellcheck disable=SC2154 # rc, out and err are set by sc (lib.sh)
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/events/helpers.sh
source "$(dirname "${BASH_SOURCE[0]}")/events/helpers.sh"

HTTPCLIENT=$EVENTS_DIR/httpclient.py
STATE=$T/state
PKI=$T/pki
mkdir -p "$PKI"

# --- Certificates and the token -----------------------------------------------
# ca_new NAME: a self-signed CA $PKI/NAME.{crt,key}.
ca_new() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$PKI/$1.key" -out "$PKI/$1.crt" -days 2 -subj "/CN=slotd test $1" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		2>/dev/null
}
# cert_new NAME CA USAGE [SAN]: a certificate $PKI/NAME.{crt,key} signed by CA.
cert_new() {
	local ext="$PKI/$1.ext"
	printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n' "$3" >"$ext"
	[ -z "${4:-}" ] || printf 'subjectAltName=%s\n' "$4" >>"$ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$PKI/$1.key" -out "$PKI/$1.csr" -subj "/CN=$1" 2>/dev/null &&
		openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/$2.crt" -CAkey "$PKI/$2.key" \
			-CAcreateserial -days 2 -extfile "$ext" -out "$PKI/$1.crt" 2>/dev/null
}
check "openssl makes the test CA" ca_new ca
check "openssl makes another CA" ca_new otherca
check "openssl makes the server certificate (127.0.0.1)" \
	cert_new server ca serverAuth "IP:127.0.0.1,DNS:localhost"
check "openssl makes a client certificate from the test CA" cert_new client ca clientAuth
check "openssl makes a client certificate from the other CA" cert_new stranger otherca clientAuth
openssl rand -hex 24 >"$T/token"
TOKEN=$(cat "$T/token")

# A free loopback port for the listener.
PORT=$("$PYTHON" -S -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=https://127.0.0.1:$PORT

# req METHOD PATH [CURL_ARG...]: prints the HTTP status (000: no answer);
# the body goes to $T/body.
req() {
	local method=$1 path=$2
	shift 2
	curl -sS -o "$T/body" -w '%{http_code}' --max-time 10 --cacert "$PKI/ca.crt" \
		-X "$method" "$@" "$BASE$path" 2>"$T/curl.err"
}
auth=(-H "Authorization: Bearer $TOKEN")
mtls=(--cert "$PKI/client.crt" --key "$PKI/client.key")

# The facts a refused request must leave as they were: the state file,
# byte for byte, the current link, and no event since the mark.
snapshot() {
	echo "state.json $(sha256sum <"$STATE/state.json")"
	echo "current -> $(readlink "$STORE/current")"
	echo "version $(active_version)"
}
# events_since MARK: the event types delivered since MARK, one line.
events_since() { evq --from "$1" types | tr '\n' ' ' | sed 's/ $//'; }
# metric NAME_WITH_LABELS: its value in $T/metrics.
metric() { awk -v m="$1" '$1 == m { print $2 }' "$T/metrics"; }
now() { date +%s.%3N; }
elapsed() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.2f", b - a }'; }

# --- slotd with the listener ------------------------------------------------------
make_key main
start_collector
publish 1.0.0
conf_keys=(agent.check_interval=1h agent.check_splay=0
	coordinator.manifest_url="$COLL_URL/manifest.json"
	coordinator.events_url="$COLL_URL/events"
	coordinator.connect_timeout=2s
	trigger.listen="127.0.0.1:$PORT"
	trigger.tls_cert="$PKI/server.crt" trigger.tls_key="$PKI/server.key"
	trigger.client_ca="$PKI/ca.crt" trigger.token_file="$T/token")
write_config "${conf_keys[@]}"
sc install "$(make_pkg demo-app 1.0.0)"
check_rc "slotctl install 1.0.0 exits 0" 0
start_slotd
health_ok() { [ "$(req GET /health)" = 200 ]; }
if wait_for 10 health_ok; then
	_pass "slotd's HTTPS listener answers on 127.0.0.1:$PORT"
else
	_fail "slotd's HTTPS listener answers on 127.0.0.1:$PORT" "$(cat "$T/curl.err"); $(slotd_log_tail)"
	finish
fi
check_eq "GET /health without auth: 200" 200 "$(req GET /health)"
check_eq "GET /health answers {\"status\":\"ok\"}" ok "$(jq_get status "$(cat "$T/body")")"
wait_for 10 no_pending
check_eq "slotd is up to date with 1.0.0 after its first poll" 1.0.0 "$(active_version)"

# --- No token, a wrong token: 401 and nothing changes --------------------------
# 1.1.0 is on offer from now on: a request that got through would install it.
publish 1.1.0
before=$(snapshot)
mark=$(log_mark)
check_eq "POST trigger without a token: 401" 401 "$(req POST /api/v1/update/trigger)"
req POST /api/v1/update/trigger -D "$T/headers" >/dev/null
check "the 401 asks for a bearer token (WWW-Authenticate)" grep -qi '^WWW-Authenticate: Bearer' "$T/headers"
check_eq "POST trigger with a wrong token: 401" 401 \
	"$(req POST /api/v1/update/trigger -H "Authorization: Bearer not-$TOKEN")"
check_eq "POST trigger with the token plus a suffix: 401" 401 \
	"$(req POST /api/v1/update/trigger -H "Authorization: Bearer ${TOKEN}x")"
check_eq "POST trigger with the token's prefix: 401" 401 \
	"$(req POST /api/v1/update/trigger -H "Authorization: Bearer ${TOKEN:0:20}")"
check_eq "POST trigger with the token as Basic auth: 401" 401 \
	"$(req POST /api/v1/update/trigger -H "Authorization: Basic $TOKEN")"
check_eq "POST rollback without a token: 401" 401 "$(req POST /api/v1/update/rollback)"
check_eq "GET /api/v1/status without a token: 401" 401 "$(req GET /api/v1/status)"
check_eq "GET /metrics without a token: 401" 401 "$(req GET /metrics)"
check_eq "POST trigger with a client certificate from another CA: 401" 401 \
	"$(req POST /api/v1/update/trigger --cert "$PKI/stranger.crt" --key "$PKI/stranger.key")"
check_eq "GET /api/v1/status with a client certificate from another CA: 401" 401 \
	"$(req GET /api/v1/status --cert "$PKI/stranger.crt" --key "$PKI/stranger.key")"
sleep 1.5 # time for a trigger that slipped through to act
check_eq "after the refused requests: state file, link and version unchanged" "$before" "$(snapshot)"
check_eq "after the refused requests: no event was sent" "" "$(events_since "$mark")"

# --- Malformed, oversized, unknown and wrong-method requests -------------------
"$PYTHON" "$HTTPCLIENT" garbage "$PORT" "$PKI/ca.crt" >"$T/garbage" 2>&1
# A 4xx, a closed connection or silence; "HTTP/9.9" may get 505, the
# standard answer to an unsupported HTTP version (RFC 9110, 15.6.6).
bad=$(awk '!($2 ~ /^4[0-9][0-9]$/ || $2 == "closed" || $2 == "timeout" ||
	($1 == "bad-version" && $2 == "505"))' "$T/garbage")
check_eq "$(wc -l <"$T/garbage") malformed requests get a 4xx, a closed connection or no answer" "" "$bad"
check "malformed requests: most got an explicit 4xx ($(awk '{print $2}' "$T/garbage" | sort | uniq -c | tr -s ' \n' ' '))" \
	test "$(grep -cE ' 4[0-9][0-9]$' "$T/garbage")" -ge 8
big=$(head -c 5000 /dev/zero | tr '\0' a)
check_eq "POST trigger with the token and a 5000-byte body: 413" 413 \
	"$(req POST /api/v1/update/trigger "${auth[@]}" --data-binary "$big")"
check_eq "POST trigger without a token and a 5000-byte body: 4xx (413)" 413 \
	"$(req POST /api/v1/update/trigger --data-binary "$big")"
check_eq "GET / (unknown): 404" 404 "$(req GET / "${auth[@]}")"
check_eq "POST /api/v1/update/trigger/x (unknown): 404" 404 "$(req POST /api/v1/update/trigger/x "${auth[@]}")"
check_eq "POST /api/v1/update (unknown): 404" 404 "$(req POST /api/v1/update "${auth[@]}")"
check_eq "GET /api/v1/update/trigger: 405" 405 "$(req GET /api/v1/update/trigger "${auth[@]}")"
check_eq "PUT /api/v1/update/rollback: 405" 405 "$(req PUT /api/v1/update/rollback "${auth[@]}")"
check_eq "DELETE /api/v1/status: 405" 405 "$(req DELETE /api/v1/status "${auth[@]}")"
check_eq "POST /metrics: 405" 405 "$(req POST /metrics "${auth[@]}")"
check_eq "POST /health: 405" 405 "$(req POST /health)"
sleep 1.5
check_eq "after the bad requests: state file, link and version unchanged" "$before" "$(snapshot)"
check_eq "after the bad requests: no event was sent" "" "$(events_since "$mark")"
check "slotd still runs" slotd_alive
check_eq "GET /health still 200" 200 "$(req GET /health)"

# --- 409 while slotctl (here: flock) holds the store lock ----------------------
flock "$STATE/lock" sleep 3 &
lock_pid=$!
track_pid "$lock_pid"
lock_held() { ! flock -n "$STATE/lock" true; }
wait_for 5 lock_held
check_eq "POST trigger while the store lock is held: 409" 409 \
	"$(req POST /api/v1/update/trigger "${auth[@]}")"
check_eq "POST rollback while the store lock is held: 409" 409 \
	"$(req POST /api/v1/update/rollback "${auth[@]}")"
check_eq "POST trigger with a 4096-byte body (the limit) while the lock is held: 409, not 413" 409 \
	"$(req POST /api/v1/update/trigger "${auth[@]}" --data-binary "$(head -c 4096 /dev/zero | tr '\0' a)")"
# flock's child (sleep) holds the lock too: both go, by PID.
sleep_pid=$(pgrep -P "$lock_pid")
[ -z "$sleep_pid" ] || kill "$sleep_pid" 2>/dev/null
kill "$lock_pid" 2>/dev/null
reap_pid "$lock_pid"
check "the store lock is free again" flock -n "$STATE/lock" true
check_eq "after the 409s: state file, link and version unchanged" "$before" "$(snapshot)"

# --- A token: 202, and slotd installs what the coordinator offers -------------
req GET /metrics "${auth[@]}" >/dev/null
cp "$T/body" "$T/metrics"
completed0=$(metric 'slotd_updates_total{result="completed"}')
mark=$(log_mark)
t0=$(now)
check_eq "POST trigger with the token: 202" 202 "$(req POST /api/v1/update/trigger "${auth[@]}")"
if wait_for 15 is_version 1.1.0; then
	_pass "the trigger installs the offered 1.1.0 ($(elapsed "$t0") s)"
else
	_fail "the trigger installs the offered 1.1.0" "$(slot_summary); $(slotd_log_tail)"
fi
wait_for 10 no_pending
started=$(evq --from "$mark" show '{type} {arrived}' | awk '$1 == "worker_update_started" { print $2; exit }')
# Arrival is stamped by the collector, on the same clock as t0.
started_soon() { awk -v a="$t0" -v b="$1" 'BEGIN { exit !(b != "" && b - a >= 0 && b - a < 5) }'; }
check "worker_update_started arrived after the trigger, within 5 s (latency $(elapsed "$t0" "${started:-0}") s)" \
	started_soon "$started"
check_eq "the triggered update's events" \
	"worker_update_available worker_update_started worker_update_downloaded worker_update_installed worker_update_switched worker_update_completed" \
	"$(events_since "$mark")"

# --- A client certificate from the configured CA, no token: accepted ----------
publish 1.2.0
check_eq "GET /api/v1/status with the client certificate: 200" 200 "$(req GET /api/v1/status "${mtls[@]}")"
check_eq "POST trigger with the client certificate, no token: 202" 202 \
	"$(req POST /api/v1/update/trigger "${mtls[@]}")"
if wait_for 15 is_version 1.2.0; then
	_pass "the certificate's trigger installs 1.2.0"
else
	_fail "the certificate's trigger installs 1.2.0" "$(slot_summary); $(slotd_log_tail)"
fi

# --- 200 held connections and a slow client; a trigger still works -------------
publish 1.3.0
"$PYTHON" "$HTTPCLIENT" hold "$PORT" "$PKI/ca.crt" 200 8 "$T/held" >"$T/hold.out" 2>&1 &
hold_pid=$!
track_pid "$hold_pid"
wait_for 15 test -s "$T/held"
check_eq "200 connections are open and held (100 plain TCP, 100 TLS with half a request)" 200 \
	"$(cat "$T/held" 2>/dev/null)"
"$PYTHON" "$HTTPCLIENT" trickle "$PORT" "$PKI/ca.crt" 0.03 "$TOKEN" >"$T/trickle.out" 2>&1 &
trickle_pid=$!
track_pid "$trickle_pid"
sleep 0.5
t0=$(now)
code=$(req POST /api/v1/update/trigger "${auth[@]}")
check_eq "with 200 held connections and a slow client, POST trigger: 202 ($(elapsed "$t0") s)" 202 "$code"
check_eq "... and GET /health: 200" 200 "$(req GET /health)"
if wait_for 15 is_version 1.3.0; then
	_pass "... and the update to 1.3.0 completes ($(elapsed "$t0") s)"
else
	_fail "... and the update to 1.3.0 completes" "$(slot_summary); $(slotd_log_tail)"
fi
reap_pid "$trickle_pid"
read -r trickle_status trickle_secs _ <"$T/trickle.out"
check_eq "the slow client, one byte every 30 ms, still gets its 200 (${trickle_secs:-?} s)" 200 "$trickle_status"
kill "$hold_pid" 2>/dev/null
reap_pid "$hold_pid"
wait_for 10 no_pending

# --- /metrics ---------------------------------------------------------------------
check_eq "GET /metrics with the token: 200" 200 "$(req GET /metrics "${auth[@]}")"
cp "$T/body" "$T/metrics"
for name in 'slotd_updates_total{result="completed"}' slotd_update_failures_total \
	'slotd_rollbacks_total{result="completed"}' slotd_last_update_duration_seconds \
	"slotd_active_version_info{slot=\"$(active_slot)\",version=\"1.3.0\"}" slotd_outbox_events \
	slotd_last_successful_poll_timestamp_seconds slotd_polls_total; do
	check "/metrics has $name" test -n "$(metric "$name")"
done
check "/metrics has slotd_updates_total{result=...} for failed, rolled_back and rejected too" \
	test -n "$(metric 'slotd_updates_total{result="failed"}')" \
	-a -n "$(metric 'slotd_updates_total{result="rolled_back"}')" \
	-a -n "$(metric 'slotd_updates_total{result="rejected"}')"
check "/metrics has # TYPE lines" grep -q '^# TYPE slotd_updates_total counter' "$T/metrics"
check_eq "slotd_active_version_info says slot $(active_slot) runs 1.3.0" 1 \
	"$(metric "slotd_active_version_info{slot=\"$(active_slot)\",version=\"1.3.0\"}")"
check_eq "slotd_updates_total{result=\"completed\"} grew by the 3 updates" \
	"$((completed0 + 3))" "$(metric 'slotd_updates_total{result="completed"}')"
check "slotd_last_update_duration_seconds is > 0" \
	awk -v v="$(metric slotd_last_update_duration_seconds)" 'BEGIN { exit !(v > 0) }'
check "slotd_last_successful_poll_timestamp_seconds is within the last minute" \
	awk -v v="$(metric slotd_last_successful_poll_timestamp_seconds)" -v n="$(date +%s)" \
	'BEGIN { exit !(v > n - 60 && v <= n + 1) }'
check_eq "slotd_outbox_events is 0 once everything is delivered" 0 "$(metric slotd_outbox_events)"
sample='^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$'
check_eq "metric lines are Prometheus text (name{labels} value)" "" \
	"$(grep -v '^#' "$T/metrics" | grep -vE "$sample")"

# --- /api/v1/status equals slotctl --json status ------------------------------
check_eq "GET /api/v1/status: 200" 200 "$(req GET /api/v1/status "${auth[@]}")"
cp "$T/body" "$T/api-status"
sc --json status
main_fields() {
	"$PYTHON" -S -c '
import json, sys
d = json.load(open(sys.argv[1]))
keep = ("worker_id", "phase", "active_slot", "slots", "service", "last_result",
        "events_pending", "events_last_error")
print(json.dumps({k: d.get(k, "<missing>") for k in keep}, sort_keys=True))' "$1"
}
printf '%s' "$out" >"$T/ctl-status"
check_eq "/api/v1/status equals slotctl --json status in its main fields" \
	"$(main_fields "$T/ctl-status")" "$(main_fields "$T/api-status")"

# --- Rollback through the listener ---------------------------------------------------
mark=$(log_mark)
check_eq "POST rollback with the token: 202" 202 "$(req POST /api/v1/update/rollback "${auth[@]}")"
if wait_for 15 is_version 1.2.0; then
	_pass "the rollback makes 1.2.0 active again"
else
	_fail "the rollback makes 1.2.0 active again" "$(slot_summary); $(slotd_log_tail)"
fi
wait_for 10 no_pending
check "the rollback sends worker_rollback_started, then worker_rollback_completed" \
	contains "$(events_since "$mark")" worker_rollback_started worker_rollback_completed

# --- A hanging event collector must not leave the listener saying 409 --------
# The update runs in a child; once it is over, no operation runs, whatever
# the collector does with the events.
publish 1.4.0
collector_mode hang
t0=$(now)
check_eq "POST trigger while the collector hangs: 202" 202 "$(req POST /api/v1/update/trigger "${auth[@]}")"
wait_for 15 is_version 1.4.0
sleep 0.5
code=$(req POST /api/v1/update/trigger "${auth[@]}")
check_eq "once the update to 1.4.0 is over ($(elapsed "$t0") s), POST trigger: 202, not 409" 202 "$code"
collector_mode ok
wait_for 20 no_pending

# --- slotd stops cleanly ---------------------------------------------------------------
kill -TERM "$SLOTD_PID"
reap_pid "$SLOTD_PID"
check_eq "slotd exits 0 on SIGTERM" 0 "$?"
SLOTD_PID=
check_eq "the listener is closed after slotd stopped" 000 "$(req GET /health)"

# --- A non-loopback listener without authentication is a config error ----------
for addr in 0.0.0.0:$PORT "[::]:$PORT" 192.0.2.1:$PORT; do
	write_config "${conf_keys[@]}" trigger.listen="$addr" trigger.token_file= trigger.client_ca=
	"$SLOTD" -c "$CONF" >"$T/cfg.out" 2>&1 &
	cfg_pid=$!
	track_pid "$cfg_pid"
	exited() { ! kill -0 "$cfg_pid" 2>/dev/null; }
	if wait_for 5 exited; then
		reap_pid "$cfg_pid"
		cfg_rc=$?
	else
		kill -TERM "$cfg_pid"
		reap_pid "$cfg_pid"
		cfg_rc=running
	fi
	check_eq "listen = $addr without token_file or client_ca: slotd exits 2" 2 "$cfg_rc"
	check "... and the message names [trigger] listen ($(head -n 1 "$T/cfg.out"))" \
		grep -q '\[trigger\] listen' "$T/cfg.out"
done
write_config "${conf_keys[@]}" trigger.listen="0.0.0.0:$PORT" trigger.client_ca=
sc status
check_rc "listen = 0.0.0.0 with a token_file is a valid config (slotctl status exits 0)" 0

finish
