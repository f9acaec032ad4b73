# shellcheck shell=bash
# lib-coordinator.sh: the coordinator side of the integration tests, sourced
# by test-coordinator.sh after lib.sh. It owns a real nginx that serves a
# folder published with scripts/slot-publish, the test PKI it needs, the
# small Python servers that misbehave where a static nginx cannot, and the
# tmpfs mounts of the disk-full tests. Everything it starts is stopped by
# PID and everything it mounts is unmounted when the test exits.
#
#   coord_start SERVE_DIR     nginx (foreground process of this shell) on
#                             127.0.0.1: plain HTTP, HTTPS with the test CA,
#                             and HTTPS that requires a client certificate;
#                             serves SERVE_DIR/current at /
#   coord_stop                stops it (SIGTERM to its PID, then waits)
#   coord_url [http|https|mtls] [PATH]   a URL of it (default https /manifest)
#   coord_log [FROM]          its access log, from line FROM+1 (default all):
#                             "$request" $status range="$http_range"
#                             inm="$http_if_none_match" sent=$body_bytes_sent
#                             port=$server_port
#   coord_log_mark            the access log's current line count (a FROM)
#   mock_start MODE [OPT...]  misbehave.py on SERVE_DIR (see that file) on a
#                             free port; sets MOCK_PORT, MOCK_LOG
#   mock_stop / mock_url [PATH]
#   manifest_edit SERVE_DIR KEY FIELD=JSON...   rewrites current/manifest
#                             with these fields and signs it again
#   coord_mount_tmpfs DIR SIZE / coord_umount DIR
#
# PKI (made once, by openssl, at test time), as variables: COORD_CA (signs
# the server certificate), COORD_OTHER_CA (an unrelated CA), COORD_CLIENT_CA,
# COORD_CLIENT_CERT, COORD_CLIENT_KEY (a client certificate it signed).

# shellcheck disable=SC2034 # variables for the sourcing test
COORD_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SLOT_PUBLISH=$ROOT/scripts/slot-publish
COORD_DIR=$T/coord
# slot-publish runs Python too: the real interpreter, not a shim.
export PYTHON

COORD_PID=
COORD_SERVE=
MOCK_PID=
MOCK_PORT=
MOCK_LOG=
_coord_mounts=()

_coord_cleanup() {
	local m
	mock_stop
	coord_stop
	for m in "${_coord_mounts[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	_coord_mounts=()
}
trap '_coord_cleanup; _cleanup' EXIT

# _coord_sign NAME CA_NAME SUBJECT EXTENSIONS: an EC key NAME.key and a
# certificate NAME.pem signed by CA_NAME, in $COORD_DIR/tls.
_coord_sign() {
	local d=$COORD_DIR/tls
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/$1.key" -subj "$3" -out "$d/$1.csr" 2>/dev/null &&
		printf '%s\n' "$4" >"$d/$1.ext" &&
		openssl x509 -req -in "$d/$1.csr" -CA "$d/$2.pem" -CAkey "$d/$2.key" \
			-set_serial "$RANDOM$RANDOM" -days 2 -extfile "$d/$1.ext" \
			-out "$d/$1.pem" 2>/dev/null
}

# _coord_ca NAME SUBJECT: a self-signed CA NAME.pem / NAME.key.
_coord_ca() {
	local d=$COORD_DIR/tls
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/$1.key" -out "$d/$1.pem" -days 2 -subj "$2" \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

# coord_pki: the test PKI (once per test).
coord_pki() {
	[ -z "${COORD_CA:-}" ] || return 0
	mkdir -p "$COORD_DIR/tls"
	if ! {
		_coord_ca ca "/CN=slotd test CA" &&
			_coord_ca otherca "/CN=some other CA" &&
			_coord_ca clientca "/CN=slotd test client CA" &&
			_coord_sign server ca "/CN=localhost" \
				"subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth
basicConstraints=CA:FALSE" &&
			_coord_sign client clientca "/CN=w1" \
				"extendedKeyUsage=clientAuth
basicConstraints=CA:FALSE"
	}; then
		echo "# cannot make the test PKI with openssl"
		return 1
	fi
	# shellcheck disable=SC2034 # used by the sourcing test
	COORD_CA=$COORD_DIR/tls/ca.pem
	COORD_OTHER_CA=$COORD_DIR/tls/otherca.pem
	COORD_CLIENT_CA=$COORD_DIR/tls/clientca.pem
	COORD_CLIENT_CERT=$COORD_DIR/tls/client.pem
	COORD_CLIENT_KEY=$COORD_DIR/tls/client.key
}

# _coord_free_ports N: N ports free on 127.0.0.1 right now, high ones.
_coord_free_ports() {
	"$PYTHON" -S - "$1" <<'PY'
import random, socket, sys
ports = []
while len(ports) < int(sys.argv[1]):
    p = random.randint(20000, 60000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        if p not in ports:
            ports.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(*ports)
PY
}

# _coord_listening PORT: something accepts connections on 127.0.0.1:PORT.
_coord_listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

_coord_write_conf() {
	local d=$COORD_DIR/nginx tls=$COORD_DIR/tls
	cat >"$d/nginx.conf" <<EOF
# nginx of test-coordinator.sh: SERVE_DIR/current at /, over HTTP, HTTPS
# and HTTPS with client certificates. The symlink current is resolved on
# every request (no open_file_cache), as slot-publish expects.
user root;
master_process off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections 256; }
http {
    log_format coord '"\$request" \$status range="\$http_range" inm="\$http_if_none_match" sent=\$body_bytes_sent port=\$server_port';
    access_log $d/access.log coord;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    types { application/json json; }
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 30s;
    root $COORD_SERVE/current;

    server {
        listen 127.0.0.1:$COORD_HTTP_PORT;
        location = /manifest { default_type application/json; }
    }
    server {
        listen 127.0.0.1:$COORD_HTTPS_PORT ssl;
        location = /manifest { default_type application/json; }
        ssl_certificate $tls/server.pem;
        ssl_certificate_key $tls/server.key;
    }
    server {
        listen 127.0.0.1:$COORD_MTLS_PORT ssl;
        ssl_certificate $tls/server.pem;
        ssl_certificate_key $tls/server.key;
        ssl_client_certificate $tls/clientca.pem;
        ssl_verify_client on;
        location = /manifest { default_type application/json; }
    }
}
EOF
}

# coord_start SERVE_DIR: starts nginx; returns 1 (with its error log) if it
# does not listen within 5 s. A port taken between the choice and nginx's
# bind costs another try.
coord_start() {
	local d=$COORD_DIR/nginx try
	COORD_SERVE=$(realpath -- "$1")
	coord_pki || return 1
	mkdir -p "$d/tmp"
	for try in 1 2 3; do
		read -r COORD_HTTP_PORT COORD_HTTPS_PORT COORD_MTLS_PORT <<<"$(_coord_free_ports 3)"
		_coord_write_conf
		: >"$d/error.log"
		nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" -g 'daemon off;' \
			>>"$d/stdout.log" 2>&1 &
		COORD_PID=$!
		track_pid "$COORD_PID"
		if wait_for 5 _coord_up; then
			return 0
		fi
		coord_stop
		grep -q 'Address already in use' "$d/error.log" || break
	done
	echo "# nginx did not start (try $try):"
	sed 's/^/#   /' "$d/error.log" "$d/stdout.log"
	return 1
}

_coord_up() {
	kill -0 "$COORD_PID" 2>/dev/null || return 2
	_coord_listening "$COORD_HTTP_PORT" && _coord_listening "$COORD_HTTPS_PORT" &&
		_coord_listening "$COORD_MTLS_PORT" && [ -s "$COORD_DIR/nginx/nginx.pid" ]
}

coord_stop() {
	[ -n "$COORD_PID" ] || return 0
	kill -TERM "$COORD_PID" 2>/dev/null
	reap_pid "$COORD_PID"
	COORD_PID=
}

coord_url() {
	local scheme=${1:-https} path=${2:-/manifest}
	case $scheme in
	http) echo "http://127.0.0.1:$COORD_HTTP_PORT$path" ;;
	https) echo "https://127.0.0.1:$COORD_HTTPS_PORT$path" ;;
	mtls) echo "https://127.0.0.1:$COORD_MTLS_PORT$path" ;;
	esac
}

coord_log() {
	tail -n "+$((${1:-0} + 1))" "$COORD_DIR/nginx/access.log" 2>/dev/null
}

coord_log_mark() {
	if [ -f "$COORD_DIR/nginx/access.log" ]; then
		wc -l <"$COORD_DIR/nginx/access.log"
	else
		echo 0
	fi
}

# mock_start MODE [OPTION...]: misbehave.py serving $COORD_SERVE (or
# $MOCK_SERVE) in MODE; options pass through (--drop-after N,
# --first-manifest FILE).
mock_start() {
	local mode=$1 dir
	shift
	mock_stop
	dir=$(mktemp -d "$COORD_DIR/mock.XXXX")
	MOCK_LOG=$dir/requests.log
	: >"$MOCK_LOG"
	"$PYTHON" -S "$COORD_LIB_DIR/coordinator/misbehave.py" --root "${MOCK_SERVE:-$COORD_SERVE}" \
		--mode "$mode" --port-file "$dir/port" --log "$MOCK_LOG" "$@" 2>"$dir/stderr" &
	MOCK_PID=$!
	track_pid "$MOCK_PID"
	if ! wait_for 5 test -s "$dir/port"; then
		echo "# misbehave.py ($mode) did not start:"
		sed 's/^/#   /' "$dir/stderr"
		mock_stop
		return 1
	fi
	MOCK_PORT=$(cat "$dir/port")
}

mock_stop() {
	[ -n "$MOCK_PID" ] || return 0
	kill -TERM "$MOCK_PID" 2>/dev/null
	reap_pid "$MOCK_PID"
	MOCK_PID=
}

mock_url() {
	echo "http://127.0.0.1:$MOCK_PORT${1:-/manifest}"
}

# manifest_edit SERVE_DIR KEY FIELD=JSON...: sets FIELDs of the current
# manifest to JSON values (FIELD= with nothing removes it) and signs the
# result with KEY, for manifests slot-publish would never write.
manifest_edit() {
	local serve=$1 key=$2 m
	shift 2
	m=$(realpath -- "$serve/current/manifest") || return 1
	"$PYTHON" -S - "$m" "$@" <<'PY' || return 1
import json, sys
path, edits = sys.argv[1], sys.argv[2:]
with open(path) as f:
    doc = json.load(f)
for e in edits:
    field, _, value = e.partition("=")
    if value:
        doc[field] = json.loads(value)
    else:
        doc.pop(field, None)
with open(path, "w") as f:
    json.dump(doc, f, indent=2)
PY
	minisign -S -s "$key" -m "$m" -x "$m.minisig" </dev/null >/dev/null
}

coord_mount_tmpfs() {
	mkdir -p "$1" && mount -t tmpfs -o "size=$2,mode=0700" tmpfs "$1" || return 1
	_coord_mounts+=("$1")
}

coord_umount() {
	local m keep=()
	umount "$1" || return 1
	for m in "${_coord_mounts[@]}"; do
		[ "$m" = "$1" ] || keep+=("$m")
	done
	_coord_mounts=("${keep[@]}")
}
