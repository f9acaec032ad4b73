#!/usr/bin/env bash
# demo.sh: the main job of slotd, end to end, on this machine (`make demo`).
#
#  1. A signing key, and four versions of a small demo service packaged and
#     signed: 1.0.0, 1.1.0 (good), 1.2.0 (answers 500 on /health), 1.3.0.
#  2. The slot store alone: install 1.0.0, install 1.1.0, switch back.
#  3. Under a real systemd (booted in private namespaces, see
#     tests/integration/sdbox/): a switch restarts the service and verifies
#     it; the bad 1.2.0 is installed, fails its health check, and slotd
#     reverts to 1.1.0 by itself.
#  4. A coordinator (nginx over HTTPS with a CA made here) publishes 1.3.0;
#     it triggers slotd through the authenticated listener; slotd downloads,
#     installs, switches and verifies; its events arrive at a collector.
#
# Everything lives in one folder under /var/tmp, removed at the end; only
# processes started here are stopped. Needs root (systemd in namespaces).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SDBOX=$ROOT/tests/integration/sdbox/sdbox.sh
SLOTCTL=$ROOT/slotctl
SLOTD=$ROOT/slotd
DEMO_APP=$ROOT/tests/demo-app/demo-app.py

if [ "$(id -u)" -ne 0 ]; then
        echo "demo: run as root (it boots systemd in private namespaces)" >&2
        exit 1
fi

W=$(mktemp -d /var/tmp/slotd-demo.XXXXXX)
chmod 0755 "$W"
pids=()
box_started=no
t_start=$(date +%s.%N)

cleanup() {
        local rc=$?
        for p in "${pids[@]}"; do
                kill "$p" 2>/dev/null || true
                wait "$p" 2>/dev/null || true
        done
        [ "$box_started" = yes ] && "$SDBOX" stop "$W/box" >/dev/null 2>&1
        rm -rf -- "$W"
        exit $rc
}
trap cleanup EXIT

if [ -t 1 ]; then
        bold=$'\e[1m' green=$'\e[32m' red=$'\e[31m' off=$'\e[0m'
else
        bold='' green='' red='' off=''
fi
section() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
elapsed() { printf '%6.2fs' "$(echo "$(date +%s.%N) - $t_start" | bc)"; }
say() { printf '[%s] %s\n' "$(elapsed)" "$*"; }
summary=()
result() { # result ok|fail TEXT
        if [ "$1" = ok ]; then
                summary+=("${green}ok${off}    $2")
        else
                summary+=("${red}FAILED${off} $2")
        fi
}
free_port() {
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
active_version() {
        "$SLOTCTL" -c "$1" --json status | python3 -c '
import json, sys
d = json.load(sys.stdin)
a = d["active_slot"]
print(d["slots"][a]["version"] if a else "none")'
}
served_version() {
        curl -fsS --max-time 2 "http://127.0.0.1:$APP_PORT/api/v1/version" 2>/dev/null |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["codebase_version"])' 2>/dev/null ||
                echo "nothing"
}

# --- 1. key and packages ----------------------------------------------------

section "1. A signing key and four signed packages"
APP_PORT=$(free_port)
mkdir -p "$W/keys" "$W/trust" "$W/pkgs"
"$ROOT/scripts/slot-keygen" "$W/keys/release" >/dev/null
cp "$W/keys/release.pub" "$W/trust/"
make_app() { # make_app VERSION BEHAVIOUR
        local src=$W/src/$1
        mkdir -p "$src"
        cp "$DEMO_APP" "$src/demo-app.py"
        printf 'version = %s\nbehaviour = %s\nport = %s\n' "$1" "$2" "$APP_PORT" >"$src/app.ini"
        "$ROOT/scripts/slot-package" -n demo-app -v "$1" -k "$W/keys/release.key" \
                -o "$W/pkgs" "$src"
}
for v in 1.0.0:healthy 1.1.0:healthy 1.2.0:health-500 1.3.0:healthy; do
        pkg=$(make_app "${v%%:*}" "${v#*:}")
        say "built and signed $(basename "$pkg") (${v#*:})"
done

# --- 2. the slot store ------------------------------------------------------

section "2. The slot store: install, install, switch back"
STORE=$W/opt/demo
CONF=$W/slotd.conf
cat >"$CONF" <<EOF
[agent]
worker_id = demo-worker
state_dir = $W/state
hooks_dir = $W/hooks
[slots]
root = $STORE
compatible = demo-app
[trust]
keys = $W/trust
EOF
say "slotctl install demo-app-1.0.0.tar.zst"
"$SLOTCTL" -c "$CONF" -q install "$W/pkgs/demo-app-1.0.0.tar.zst"
"$SLOTCTL" -c "$CONF" status
say "slotctl install demo-app-1.1.0.tar.zst"
"$SLOTCTL" -c "$CONF" -q install "$W/pkgs/demo-app-1.1.0.tar.zst"
"$SLOTCTL" -c "$CONF" status
say "slotctl switch a"
"$SLOTCTL" -c "$CONF" -q switch a
"$SLOTCTL" -c "$CONF" status
say "current -> $(readlink "$STORE/current")"
[ "$(active_version "$CONF")" = 1.0.0 ] && result ok "store: installed 1.0.0 and 1.1.0, switched back to 1.0.0" ||
        result fail "store: expected 1.0.0 active after the switch back"

# --- 3. under a real systemd --------------------------------------------------

section "3. Under a real systemd: restart, verify, revert"
mkdir -p "$W/units" "$W/box"
cat >"$W/units/demo.socket" <<EOF
[Socket]
ListenStream=127.0.0.1:$APP_PORT
EOF
cat >"$W/units/demo.service" <<EOF
[Unit]
Description=demo service managed by slotd
Requires=demo.socket
After=demo.socket
StartLimitIntervalSec=0

[Service]
Type=notify
ExecStart=$STORE/current/demo-app.py
EOF
say "booting systemd in private namespaces"
"$SDBOX" start "$W/box" "$W/units" "$W" >/dev/null
box_started=yes
export DBUS_SYSTEM_BUS_ADDRESS
DBUS_SYSTEM_BUS_ADDRESS=$("$SDBOX" bus "$W/box")
"$SDBOX" exec "$W/box" systemctl start demo.socket demo.service
say "demo.service runs $(served_version) from slot a"

cat >>"$CONF" <<EOF
[service]
unit = demo.service
restart_timeout = 20s
[health]
url = http://127.0.0.1:$APP_PORT/health
version_url = http://127.0.0.1:$APP_PORT/api/v1/version
interval = 500ms
successes = 3
timeout = 15s
[rollback]
timeout = 15s
EOF

say "slotctl switch b: restart through D-Bus, 3 health checks, version check"
"$SLOTCTL" -c "$CONF" -q switch b
say "demo.service now serves $(served_version)"
[ "$(served_version)" = 1.1.0 ] && result ok "systemd: switch to 1.1.0 restarted and verified the service" ||
        result fail "systemd: 1.1.0 not served after the switch"

say "slotctl install demo-app-1.2.0.tar.zst (its /health answers 500)"
set +e
"$SLOTCTL" -c "$CONF" install "$W/pkgs/demo-app-1.2.0.tar.zst" 2>"$W/install.err"
rc=$?
set -e
sed 's/^/    /' "$W/install.err"
say "slotctl exited $rc; demo.service serves $(served_version)"
"$SLOTCTL" -c "$CONF" status
if [ $rc -eq 1 ] && [ "$(served_version)" = 1.1.0 ] && [ "$(active_version "$CONF")" = 1.1.0 ]; then
        result ok "systemd: bad 1.2.0 failed its health check and was reverted to 1.1.0 by itself"
else
        result fail "systemd: the revert of 1.2.0 did not end on 1.1.0"
fi
say "timeline of this store's events (from the outbox):"
for f in "$W"/state/outbox/*.json; do
        python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))
d = e["data"]
extra = d.get("error") or d.get("reason") or ""
print("    %s  %-26s %s -> %s  %s" % (e["time"][11:19], e["type"], d.get("from_version", "-"),
      d.get("to_version", "-"), extra[:80]))' "$f"
done

# --- 4. coordinator, trigger, events ----------------------------------------

section "4. A coordinator publishes 1.3.0 and triggers slotd"
COORD_PORT=$(free_port)
TRIGGER_PORT=$(free_port)
EVENTS_PORT=$(free_port)
mkdir -p "$W/tls" "$W/www" "$W/nginx/logs"
(
        cd "$W/tls"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=slotd demo CA" \
                -keyout ca.key -out ca.pem 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key \
                -out server.csr 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
                -extfile san.ext -out server.pem 2>/dev/null
)
say "made a CA and a server certificate for the coordinator"
cat >"$W/nginx/nginx.conf" <<EOF
user root;
worker_processes 1;
error_log $W/nginx/logs/error.log;
pid $W/nginx/nginx.pid;
events { worker_connections 64; }
http {
    access_log $W/nginx/logs/access.log;
    types { application/json json; }
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$COORD_PORT ssl;
        ssl_certificate $W/tls/server.pem;
        ssl_certificate_key $W/tls/server.key;
        root $W/www/current;
    }
}
EOF
nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
cat >"$W/collector.py" <<'EOF'
import http.server, sys
log = open(sys.argv[2], "a", buffering=1)
class Collector(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        log.write(body.decode() + "\n")
        self.send_response(202)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Collector).serve_forever()
EOF
python3 "$W/collector.py" "$EVENTS_PORT" "$W/events.jsonl" &
pids+=($!)
head -c 32 /dev/urandom | base64 >"$W/token"
rm -f "$W"/state/outbox/*.json
cat >>"$CONF" <<EOF
[agent]
check_interval = 1h
check_splay = 0  ; the first poll comes at once, then hourly: the trigger does the rest
[coordinator]
manifest_url = https://127.0.0.1:$COORD_PORT/manifest
events_url = http://127.0.0.1:$EVENTS_PORT/events
ca_file = $W/tls/ca.pem
[trigger]
listen = 127.0.0.1:$TRIGGER_PORT
token_file = $W/token
EOF
"$SLOTD" -c "$CONF" 2>"$W/slotd.log" &
slotd_pid=$!
pids+=("$slotd_pid")
for _ in $(seq 50); do
        curl -fsS "http://127.0.0.1:$TRIGGER_PORT/health" >/dev/null 2>&1 && break
        sleep 0.1
done
say "slotd runs; its trigger listener answers on 127.0.0.1:$TRIGGER_PORT"
"$ROOT/scripts/slot-publish" -k "$W/keys/release.key" -d "$W/www" \
        "$W/pkgs/demo-app-1.3.0.tar.zst" >/dev/null
say "the coordinator published 1.3.0 with slot-publish (manifest signed, behind one symlink)"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
        "http://127.0.0.1:$TRIGGER_PORT/api/v1/update/trigger")
say "a trigger without the token: HTTP $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $(cat "$W/token")" \
        "http://127.0.0.1:$TRIGGER_PORT/api/v1/update/trigger")
say "the coordinator's trigger with the token: HTTP $code"
for _ in $(seq 300); do
        [ "$(active_version "$CONF")" = 1.3.0 ] && grep -q worker_update_completed "$W/events.jsonl" 2>/dev/null &&
                break
        sleep 0.1
done
say "demo.service now serves $(served_version)"
sed 's/^/    /' "$W/slotd.log" | grep -v '^$' | tail -n 8
say "events received by the collector:"
python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    d = e["data"]
    print("    %s  %-26s %s -> %s" % (e["time"][11:19], e["type"], d.get("from_version", "-"),
          d.get("to_version", "-")))' "$W/events.jsonl"
if [ "$(served_version)" = 1.3.0 ] && grep -q worker_update_completed "$W/events.jsonl"; then
        result ok "coordinator: triggered update to 1.3.0 verified; events delivered"
else
        result fail "coordinator: 1.3.0 not verified or events missing"
fi
kill "$slotd_pid" 2>/dev/null || true

section "Summary"
for line in "${summary[@]}"; do
        printf '  %s\n' "$line"
done
printf '  demo took %s\n' "$(elapsed)"
for line in "${summary[@]}"; do
        case $line in *FAILED*) exit 1 ;; esac
done
