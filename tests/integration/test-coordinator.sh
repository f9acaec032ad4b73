#!/usr/bin/env bash
# test-coordinator.sh: the pull protocol (SPEC section 5) against a real
# nginx serving releases made by scripts/slot-publish, and against small
# Python servers for what a static server cannot do. slotctl check/update
# and slotd are driven as an operator would: good updates over HTTPS with a
# test CA, every kind of manifest a worker must refuse (exit 3), network
# and server failures (exit 1, with the URL or cause named), resumed
# downloads, staged rollouts, a full disk, a release published between the
# manifest and its signature, and slotd's idle polls (304) and SIGUSR1.
# No service unit: an install ends with the switch of the current symlink.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/lib-coordinator.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-coordinator.sh"

SERVE=$T/serve
DL=$T/state/download
mkdir -p "$SERVE"
make_key main
make_key other untrusted

publish() { # publish [slot-publish OPTION...] PACKAGE: prints the release folder
	"$SLOT_PUBLISH" -k "$T/secret/main.key" -d "$SERVE" "$@"
}

# conf URL [SECTION.KEY=VALUE...]: the config of the brief, pointing at URL.
conf() {
	write_config agent.check_interval=1s agent.check_splay=0 \
		coordinator.manifest_url="$1" coordinator.ca_file="$T/ca.pem" \
		coordinator.retries=2 coordinator.retry_backoff=100ms "${@:2}"
}

# summary: active slot and both slots' state/version, to compare.
summary() { slot_summary; }

# remember: notes the active slot and its version before an update, for
# switched.
remember() {
	prev_slot=$(active_slot)
	prev_version=$(jq_get "slots.$prev_slot.version")
	before=$(summary)
}

# switched DESCRIPTION VERSION: since remember, the other slot became
# active with VERSION, and the slot that was active kept its version.
switched() {
	local now other=a
	[ "$prev_slot" != a ] || other=b
	now=$(active_slot)
	check_eq "$1" "active=$other version=$2, slot $prev_slot keeps $prev_version" \
		"active=$now version=$(jq_get "slots.$now.version"), slot $prev_slot keeps $(jq_get "slots.$prev_slot.version")"
}

# nothing_downloaded: the download folder holds no file.
nothing_downloaded() {
	local left
	left=$(ls -A "$DL" 2>/dev/null)
	[ -z "$left" ] || {
		echo "left in $DL: $left"
		return 1
	}
}

# rejected DESCRIPTION FRAGMENT: the last sc run exited 3 naming FRAGMENT,
# and the slots are as in $before.
rejected() {
	check_rc "$1: exit 3" 3
	check_err "$1: the error says why ($2)" "$2"
	check_eq "$1: slots untouched" "$before" "$(summary)"
}

# count_log PATTERN [FROM]: nginx access log lines from line FROM+1 matching
# the extended regex PATTERN.
count_log() {
	coord_log "${2:-0}" | grep -Ec -- "$1"
}

# elapsed_since START: seconds (decimal) since $EPOCHREALTIME was START.
elapsed_since() {
	"$PYTHON" -S -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' \
		"$1" "$EPOCHREALTIME"
}

# within LOW HIGH VALUE: LOW <= VALUE <= HIGH (decimals allowed).
within() {
	"$PYTHON" -S -c 'import sys; l, h, v = map(float, sys.argv[1:]); sys.exit(not l <= v <= h)' "$@"
}

# big_pkg VERSION MEGABYTES [NAME]: a package with MEGABYTES of random
# (incompressible) data in it.
big_pkg() {
	local extra
	extra=$(mktemp -d "$T/src/big.XXXX")
	mkdir -p "$extra/share"
	head -c "$(($2 * 1024 * 1024))" /dev/urandom >"$extra/share/blob"
	make_pkg "${3:-demo-app}" "$1" zstd "$extra"
}

# --- Start: 1.0.0 installed by hand, nginx up -------------------------------
write_config
sc install "$(make_pkg demo-app 1.0.0)"
check_rc "1.0.0 installs from a file (starting point)" 0
if ! coord_start "$SERVE"; then
	_fail "nginx serves $SERVE over HTTP, HTTPS and mTLS"
	finish
fi
_pass "nginx serves $SERVE over HTTP, HTTPS and mTLS (ports $COORD_HTTP_PORT $COORD_HTTPS_PORT $COORD_MTLS_PORT)"
cp "$COORD_CA" "$T/ca.pem"

# --- slot-publish ------------------------------------------------------------
p110=$(make_pkg demo-app 1.1.0)
rel110=$(publish "$p110")
check "slot-publish exits 0 and prints the release folder" test -d "$rel110"
check_eq "current is a relative symlink to the release" "releases/${rel110##*/}" \
	"$(readlink "$SERVE/current")"
check "the release folder is named <version>-<UTC time>" \
	grep -Eq '^1\.1\.0-[0-9]{8}T[0-9]{6}Z$' <<<"${rel110##*/}"
check "the package and its .minisig are under packages/" \
	test -f "$rel110/packages/demo-app-1.1.0.tar.zst" -a -f "$rel110/packages/demo-app-1.1.0.tar.zst.minisig"
check "the manifest's signature verifies with minisign and the public key" \
	minisign -V -q -p "$T/secret/main.pub" -m "$rel110/manifest" -x "$rel110/manifest.minisig"
check "the manifest holds name, version, relative url, size, sha256, expires in 30 days, no downgrade" \
	"$PYTHON" -S - "$rel110/manifest" "$p110" <<'PY'
import datetime, hashlib, json, os, sys
m = json.load(open(sys.argv[1]))
pkg = sys.argv[2]
data = open(pkg, "rb").read()
want = {"name": "demo-app", "version": "1.1.0", "url": "packages/" + os.path.basename(pkg),
        "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "downgrade": False}
for k, v in want.items():
    assert m.get(k) == v, (k, m.get(k), v)
assert "rollout" not in m, m
exp = datetime.datetime.fromisoformat(m["expires"].replace("Z", "+00:00"))
days = (exp - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400
assert 29.9 < days <= 30, days
PY
mkdir -p "$T/serve2"
rel=$("$SLOT_PUBLISH" -k "$T/secret/main.key" -d "$T/serve2" -u https://cdn.example/slotd/ \
	-e 2030-01-02T03:04:05Z -p 25 -s s1 --downgrade "$p110")
check_eq "-u BASE/ -e -p -s --downgrade end up in the manifest" \
	"https://cdn.example/slotd/demo-app-1.1.0.tar.zst 2030-01-02T03:04:05Z 25 s1 true" \
	"$(_json_format '{url} {expires} {rollout.percent} {rollout.salt} {downgrade}' "$(cat "$rel/manifest")")"
"$SLOT_PUBLISH" -k "$T/secret/main.key" >/dev/null 2>&1
check_eq "slot-publish without SERVE_DIR or package: usage, exit 2" 2 "$?"
echo "not a package" >"$T/plain.txt"
"$SLOT_PUBLISH" -k "$T/secret/main.key" -d "$SERVE" "$T/plain.txt" >/dev/null 2>"$T/publish.err"
check_eq "slot-publish of a file without slot.ini: exit 1" 1 "$?"
check "... saying it holds no slot.ini" grep -q 'slot.ini' "$T/publish.err"
"$SLOT_PUBLISH" -k "$T/secret/main.key" -d "$SERVE" -p 10 "$p110" >/dev/null 2>&1
check_eq "slot-publish -p without -s: exit 1" 1 "$?"
check_eq "failed publishes leave current on the last release" "releases/${rel110##*/}" \
	"$(readlink "$SERVE/current")"
check "failed publishes leave no staging folder behind" \
	test -z "$(find "$SERVE/releases" -maxdepth 1 -name '.staging*')"

# --- check, then a good update over HTTPS ---------------------------------------
before=$(summary)
conf "$(coord_url https '/manifest?worker={worker_id}&channel={channel}')"
mark=$(coord_log_mark)
sc check
check_rc "check over HTTPS with the test CA: exit 0" 0
check_out "check prints the offered version" "1.1.0"
check_out "check says it would install" "would install"
check_eq "check changes no slot" "$before" "$(summary)"
check "check downloads nothing" nothing_downloaded
check_eq "check fetched no package" 0 "$(count_log '/packages/' "$mark")"
check_eq "the signature is fetched at <manifest path>.minisig with the same query string" 1 \
	"$(count_log '"GET /manifest\.minisig\?worker=w1&channel=stable HTTP/1\.1" 200' "$mark")"
sc --json check
check_eq "check --json: offered 1.1.0, decision install, would_install true" "1.1.0 install true" \
	"$(_json_format '{offered_version} {decision} {would_install}' "$out")"

conf "$(coord_url https)"
mark=$(coord_log_mark)
remember
sc update
check_rc "update over HTTPS: exit 0" 0
check_eq "update: slot b is active with 1.1.0, a keeps 1.0.0" "active=b a=good/1.0.0 b=good/1.1.0" "$(summary)"
check_eq "current/ serves the 1.1.0 tree" 1.1.0 "$(cat "$STORE/current/share/version" 2>&1)"
check_eq "last_result is completed 1.0.0 -> 1.1.0" "completed 1.0.0 1.1.0" \
	"$(jq_get last_result.result) $(jq_get last_result.from_version) $(jq_get last_result.to_version)"
check_eq "nginx sent the whole package once (200, $(stat -c %s "$p110") bytes)" 1 \
	"$(count_log "\"GET /packages/demo-app-1\.1\.0\.tar\.zst HTTP/1\.1\" 200 .* sent=$(stat -c %s "$p110") " "$mark")"
check_eq "the package's own .minisig was fetched" 1 \
	"$(count_log '"GET /packages/demo-app-1\.1\.0\.tar\.zst\.minisig HTTP/1\.1" 200' "$mark")"
check "the download is deleted after the install" nothing_downloaded

mark=$(coord_log_mark)
sc update
check_rc "update when up to date: exit 0" 0
check_out "update says it is already up to date" "up to date"
check_eq "up to date: slots unchanged" "active=b a=good/1.0.0 b=good/1.1.0" "$(summary)"
check_eq "up to date: no package GET" 0 "$(count_log '/packages/' "$mark")"

# --- Manifests a worker must refuse (exit 3) ---------------------------------------
before=$(summary)
p120=$(make_pkg demo-app 1.2.0)

publish "$p120" >/dev/null && rm "$SERVE/current/manifest.minisig"
sc update
rejected "unsigned manifest (no .minisig, 404)" "signature"
check_eq "a rejection is the last_result" rejected "$(jq_get last_result.result)"

publish -k "$T/secret/other.key" "$p120" >/dev/null
sc update
rejected "manifest signed by an untrusted key" "signature"

publish -e 2020-01-01T00:00:00Z "$p120" >/dev/null 2>&1
sc update
rejected "expired manifest" "expired"

rel=$(publish "$p120") && truncate -s 100 "$rel/manifest"
sc update
rejected "truncated manifest (signature of the whole one)" "signature"

rel=$(publish "$p120") && printf 'this is { not json\n' >"$rel/manifest" && sign "$rel/manifest"
sc update
rejected "signed garbage (not JSON)" "JSON"

publish "$(make_pkg other-app 1.2.0)" >/dev/null
sc update
rejected "manifest for another package name" "other-app"

p105=$(make_pkg demo-app 1.0.5)
publish "$p105" >/dev/null
sc update
rejected "downgrade 1.1.0 -> 1.0.5 without permission" "downgrade"

pbig=$(big_pkg 1.2.0 24)
bigsize=$(stat -c %s "$pbig")
publish "$pbig" >/dev/null
conf "$(coord_url https)" slots.max_package_size=1M
mark=$(coord_log_mark)
sc update
rejected "package size above max_package_size" "max_package_size"
check_eq "above max_package_size: the package is not even requested" 0 "$(count_log '/packages/' "$mark")"
conf "$(coord_url https)"

manifest_edit "$SERVE" "$T/secret/main.key" size=65536
mark=$(coord_log_mark)
sc update
rejected "package larger than the manifest's size" "size"
pkgline() { coord_log "$mark" | grep -E '"GET /packages/demo-app-1\.2\.0\.tar\.zst HTTP'; }
wait_for 5 pkgline >/dev/null
sent=$(pkgline | sed -n 's/.* sent=\([0-9]*\) .*/\1/p' | head -1)
check "the download stopped early: nginx sent ${sent:-?} of $bigsize bytes" \
	test "${sent:-$bigsize}" -lt "$bigsize"
check "after the size mismatch nothing is left in state_dir/download" nothing_downloaded

publish "$p120" >/dev/null
manifest_edit "$SERVE" "$T/secret/main.key" sha256="\"$(printf other | sha256sum | cut -d' ' -f1)\""
sc update
rejected "package whose sha256 differs from the manifest's" "sha256"
check "after the hash mismatch nothing is left in state_dir/download" nothing_downloaded

# With the manifest's permission, the same downgrade installs.
publish --downgrade "$p105" >/dev/null
remember
sc --json check
check_eq "check of a downgrade published with --downgrade: would install" "install true" \
	"$(_json_format '{decision} {would_install}' "$out")"
sc update
check_rc "update to a downgrade published with --downgrade: exit 0" 0
switched "the permitted downgrade to 1.0.5 is active" 1.0.5

# --- Server and network failures (exit 1) ------------------------------------------
before=$(summary)
rel=$(publish "$p120") && rm "$rel/packages/demo-app-1.2.0.tar.zst"
sc update
check_rc "package answered 404: exit 1" 1
check_err "the 404 error names the URL" "$(coord_url https /packages/demo-app-1.2.0.tar.zst)"
check_err "the 404 error names the status" "404"
check_eq "404: slots untouched" "$before" "$(summary)"

publish "$p120" >/dev/null
mock_start error500
conf "$(mock_url)"
sc update
check_rc "package answered 500: exit 1" 1
check_err "the 500 error names the URL" "$(mock_url /packages/demo-app-1.2.0.tar.zst)"
check_err "the 500 error names the status" "500"
check_eq "a 500 is retried: retries = 2 means 3 GETs" 3 \
	"$(grep -c '^GET /packages/demo-app-1.2.0.tar.zst 500' "$MOCK_LOG")"
check_eq "500: slots untouched" "$before" "$(summary)"

pstall=$(big_pkg 1.2.0 1)
publish "$pstall" >/dev/null
mock_start stall
conf "$(mock_url)" coordinator.stall_timeout=2s coordinator.retries=1
start=$EPOCHREALTIME
sc update
took=$(elapsed_since "$start")
check_rc "a server that stalls mid-body: exit 1" 1
check "... in a bounded time (took ${took}s: two stalls of 2 s, at most 25 s)" \
	within 3.5 25 "$took"
# stall_timeout is how long a download may receive nothing: each stalled
# attempt must be dropped within it (plus slack for scheduling).
two_stalls() { [ "$(grep -c '^STALL ' "$MOCK_LOG")" -ge 2 ]; }
wait_for 3 two_stalls
mapfile -t silences < <(sed -n 's/^STALL .* silent=//p' "$MOCK_LOG")
check "each stalled attempt was dropped after stall_timeout = 2s of silence (silent for: ${silences[*]:-?} s; at most 3.5 s)" \
	"$PYTHON" -S -c 'import sys; v = [float(x) for x in sys.argv[1:]]; sys.exit(not (len(v) == 2 and max(v) <= 3.5))' "${silences[@]}"
check_err "the stall error names the URL" "$(mock_url /packages/demo-app-1.2.0.tar.zst)"
check_eq "a stalled download is retried once (retries = 1)" 2 \
	"$(grep -c '^GET /packages/demo-app-1.2.0.tar.zst ' "$MOCK_LOG")"
check "the retry after a stall resumes with Range: bytes=N- (N > 0)" \
	grep -Eq '^GET /packages/demo-app-1.2.0.tar.zst 206 range=bytes=[1-9][0-9]*- ' "$MOCK_LOG"
check_eq "stall: slots untouched" "$before" "$(summary)"

pdrop=$(big_pkg 1.2.0 2)
publish "$pdrop" >/dev/null
mock_start drop
conf "$(mock_url)"
remember
sc update
check_rc "a connection dropped halfway: the update still succeeds (exit 0)" 0
switched "after the drop, 1.2.0 is active" 1.2.0
first_sent=$(sed -n 's/^GET \/packages\/demo-app-1.2.0.tar.zst 200 range=- .* sent=\([0-9]*\)$/\1/p' "$MOCK_LOG" | head -1)
check "the first GET was cut after ${first_sent:-?} of $(stat -c %s "$pdrop") bytes" \
	test "${first_sent:-0}" -gt 0 -a "${first_sent:-0}" -lt "$(stat -c %s "$pdrop")"
check "the next GET resumed with Range: bytes=${first_sent:-N}- and got 206" \
	grep -q "^GET /packages/demo-app-1.2.0.tar.zst 206 range=bytes=${first_sent:-x}- " "$MOCK_LOG"
check "after the resumed install nothing is left in state_dir/download" nothing_downloaded

before=$(summary)
publish "$(make_pkg demo-app 1.3.0)" >/dev/null
mock_start endless
conf "$(mock_url)"
start=$EPOCHREALTIME
sc update
took=$(elapsed_since "$start")
rejected "an endless package body" "size"
check "the endless body was cut at once (took ${took}s)" within 0 10 "$took"
sent=$(sed -n 's/^GET \/packages\/demo-app-1.3.0.tar.zst 200 .* sent=\([0-9]*\)$/\1/p' "$MOCK_LOG" | head -1)
check "the endless server wrote ${sent:-?} bytes, far below its 1 GiB cap" test "${sent:-1073741824}" -lt 67108864
check "after the endless body nothing is left in state_dir/download" nothing_downloaded
mock_stop

conf "$(coord_url https)" coordinator.ca_file="$COORD_OTHER_CA"
sc update
check_rc "a server certificate from another CA: exit 1" 1
check_err "the TLS error mentions the certificate" "certificate"
check_eq "bad certificate: slots untouched" "$before" "$(summary)"

mark=$(coord_log_mark)
conf "$(coord_url mtls)"
sc update
check_rc "the mTLS port without a client certificate: exit 1" 1
check_eq "nginx refused it (400 on the mTLS port)" 1 "$(count_log "\" 400 .*port=$COORD_MTLS_PORT\$" "$mark")"
check_eq "no client certificate: slots untouched" "$before" "$(summary)"
conf "$(coord_url mtls)" coordinator.client_cert="$COORD_CLIENT_CERT" coordinator.client_key="$COORD_CLIENT_KEY"
sc check
check_rc "the mTLS port with the client certificate: check exits 0" 0
check_out "... and offers 1.3.0" "1.3.0"

# A full disk: state_dir on a 2 MB tmpfs, a 5 MB package offered.
small=$T/small-state
if coord_mount_tmpfs "$small" 2M; then
	cp -a "$T/state/." "$small/"
	publish "$(big_pkg 1.4.0 5)" >/dev/null
	conf "$(coord_url https)" agent.state_dir="$small"
	before=$(summary)
	sc update
	check_rc "a 5 MB package with state_dir on a 2 MB tmpfs: exit 1" 1
	check_err "the error is about free space" "free space"
	check_eq "full disk: slots untouched" "$before" "$(summary)"
	check_eq "full disk: current/ still serves 1.2.0" 1.2.0 "$(cat "$STORE/current/share/version" 2>&1)"
	check "full disk: nothing was written to the full file system's download folder" \
		test -z "$(find "$small/download" -type f -size +0 2>/dev/null)"
	check "the tmpfs is unmounted" coord_umount "$small"
else
	_fail "mount a 2 MB tmpfs for the full-disk test (needs root)"
fi
conf "$(coord_url https)"

# --- Staged rollout --------------------------------------------------------------
before=$(summary)
p150=$(make_pkg demo-app 1.5.0)
publish -p 0 -s any-salt "$p150" >/dev/null
sc update
check_rc "rollout 0%: exit 0" 0
check_out "rollout 0%: the worker is outside the rollout" "outside the rollout"
check_eq "rollout 0%: nothing installed" "$before" "$(summary)"

# Two salts where w1 falls on different sides at 50%, found with hashlib.
read -r salt_in salt_out <<<"$("$PYTHON" -S -c '
import hashlib
side = lambda salt, w: int.from_bytes(hashlib.sha256((salt + w).encode()).digest(), "big") % 100 < 50
s_in = next("salt-%d" % i for i in range(1000) if side("salt-%d" % i, "w1"))
s_out = next("salt-%d" % i for i in range(1000) if not side("salt-%d" % i, "w1"))
print(s_in, s_out)')"
expected_side() { # expected_side SALT WORKER PERCENT: install / not_in_rollout
	"$PYTHON" -S -c '
import hashlib, sys
salt, w, pct = sys.argv[1], sys.argv[2], int(sys.argv[3])
n = int.from_bytes(hashlib.sha256((salt + w).encode()).digest(), "big") % 100
print("install" if n < pct else "not_in_rollout")' "$@"
}
for salt in "$salt_in" "$salt_out"; do
	publish -p 50 -s "$salt" "$p150" >/dev/null
	for w in w1 w2 w3; do
		conf "$(coord_url https)" agent.worker_id="$w"
		want=$(expected_side "$salt" "$w" 50)
		sc --json check
		first=$(jq_get decision "$out")
		sc --json check
		check_eq "rollout 50% salt $salt worker $w: slotctl agrees with sha256 mod 100 ($want), twice" \
			"$want $want" "$first $(jq_get decision "$out")"
	done
done
conf "$(coord_url https)"

publish -p 100 -s any-salt "$p150" >/dev/null
remember
sc update
check_rc "rollout 100%: exit 0" 0
switched "rollout 100%: 1.5.0 installed" 1.5.0

# --- A release published between the manifest GET and its signature GET -------
relA=$(publish "$(make_pkg demo-app 1.6.0)")
publish "$(make_pkg demo-app 1.6.1)" >/dev/null
mock_start race --first-manifest "$relA/manifest"
conf "$(mock_url)"
remember
sc update
check_rc "manifest of release A with the signature of release B: no rejection (exit 0)" 0
switched "the retry fetched release B whole and installed 1.6.1" 1.6.1
check "the first manifest was refetched (the race did happen)" \
	test "$(grep -c '^GET /manifest ' "$MOCK_LOG")" -ge 2
mock_stop

# --- slotd: idle polls cost a 304, SIGUSR1 polls now ----------------------------------
conf "$(coord_url https)" agent.auto_update=yes
mark=$(coord_log_mark)
"$SLOTD" -c "$CONF" >"$T/slotd.log" 2>&1 &
slotd_pid=$!
track_pid "$slotd_pid"
three_304() { [ "$(count_log '"GET /manifest HTTP/1\.1" 304 ' "$mark")" -ge 3 ]; }
wait_for 10 three_304
n304=$(count_log '"GET /manifest HTTP/1\.1" 304 ' "$mark")
check "slotd's polls of an unchanged manifest are answered 304 (got $n304 in a few seconds)" \
	test "$n304" -ge 3
check "the 304 polls sent If-None-Match with nginx's ETag" \
	grep -Eq '"GET /manifest HTTP/1\.1" 304 range="-" inm="[^"-]' <<<"$(coord_log "$mark")"
check_eq "the signature was fetched only with the first full manifest" 1 \
	"$(count_log '"GET /manifest\.minisig HTTP' "$mark")"
check_eq "no package GET while up to date" 0 "$(count_log '/packages/' "$mark")"

# The manifest cached on disk is checked whenever it is read, never
# trusted: changed while slotd runs, it is not used (slotd answers a 304
# with the manifest it verified itself); changed before a start, it fails
# its signature and is fetched again whole, with no rejection.
cache=$T/state/manifest.json
no_rejection() { ! grep -q "rejected" "$T/slotd.log"; }
cp "$cache" "$T/manifest.json.good"
sed -i 's/"version": *"[^"]*"/"version": "9.9.9"/' "$cache"
check "the cached manifest now names 9.9.9" grep -q '"9\.9\.9"' "$cache"
mark=$(coord_log_mark)
two_304() { [ "$(count_log '"GET /manifest HTTP/1\.1" 304 ' "$mark")" -ge 2 ]; }
wait_for 10 two_304
check "slotd kept polling (304) with the changed cache" two_304
check_eq "no package GET: the changed cache was not used" 0 "$(count_log '/packages/' "$mark")"
check "no rejection while the cache is changed" no_rejection
check_eq "no full fetch either: the 304s were answered from what slotd verified itself" 0 \
	"$(count_log '"GET /manifest HTTP/1\.1" 200 ' "$mark")"
kill -TERM "$slotd_pid"
reap_pid "$slotd_pid"
check_eq "slotd stops on SIGTERM with exit 0" 0 "$?"
mark=$(coord_log_mark)
"$SLOTD" -c "$CONF" >>"$T/slotd.log" 2>&1 &
slotd_pid=$!
track_pid "$slotd_pid"
refetched() { [ "$(count_log '"GET /manifest HTTP/1\.1" 200 ' "$mark")" -ge 1 ]; }
wait_for 10 refetched
check "after a restart the changed cache fails its signature: the manifest is fetched whole (200)" \
	refetched
wait_for 10 two_304
check "then the polls are 304s again" two_304
check "the cache holds the coordinator's manifest again" cmp -s "$cache" "$T/manifest.json.good"
check "no rejection for a changed cache" no_rejection
check_eq "still no package GET" 0 "$(count_log '/packages/' "$mark")"
kill -TERM "$slotd_pid"
reap_pid "$slotd_pid"
check_eq "slotd stops on SIGTERM with exit 0" 0 "$?"

conf "$(coord_url https)" agent.auto_update=yes agent.check_interval=1h
mark=$(coord_log_mark)
"$SLOTD" -c "$CONF" >>"$T/slotd.log" 2>&1 &
slotd_pid=$!
track_pid "$slotd_pid"
first_poll() { [ "$(count_log '"GET /manifest HTTP' "$mark")" -ge 1 ]; }
wait_for 10 first_poll
publish "$(make_pkg demo-app 1.7.0)" >/dev/null
sleep 1.5
check_eq "with check_interval = 1h slotd polls once at start" 1 "$(count_log '"GET /manifest HTTP' "$mark")"
remember
kill -USR1 "$slotd_pid"
active_170() { [ "$(jq_get "slots.$(active_slot).version")" = 1.7.0 ]; }
wait_for 15 active_170
switched "SIGUSR1 made slotd poll and install 1.7.0" 1.7.0
check_eq "the SIGUSR1 poll got the new manifest (200)" 1 \
	"$(count_log '"GET /manifest HTTP/1\.1" 200 ' "$mark")"
kill -TERM "$slotd_pid"
reap_pid "$slotd_pid"

# slotctl does not use slotd's ETag cache: a check always gets the manifest.
mark=$(coord_log_mark)
sc check
check_rc "slotctl check after slotd's polls: exit 0" 0
check_eq "slotctl check sends no If-None-Match and gets 200" 1 \
	"$(count_log '"GET /manifest HTTP/1\.1" 200 range="-" inm="-"' "$mark")"
# slotctl install URL: the package and, by default, URL.minisig from the
# coordinator; --sig URL names the signature instead.
pkg=$(make_pkg demo-app 1.8.0)
other=$(make_pkg demo-app 1.8.1)
publish "$pkg" >/dev/null
url=$(coord_url https "/packages/$(basename "$pkg")")
remember
sc install "$url" --sig "$(coord_url https "/packages/$(basename "$pkg").missing")"
check_rc "install URL with a --sig URL that answers 404: refused (exit 3)" 3
check_eq "the refused install changed no slot" "$before" "$(summary)"
cp "$other.minisig" "$SERVE/current/packages/other.minisig"
sc install "$url" --sig "$(coord_url https /packages/other.minisig)"
check_rc "install URL with another package's signature: refused (exit 3)" 3
check_eq "the refused install changed no slot" "$before" "$(summary)"
sc install "$url"
check_rc "install URL over HTTPS, signature from URL.minisig: exit 0" 0
switched "install URL installed 1.8.0" 1.8.0

if [ "$_n_fail" -gt 0 ]; then
	echo "# slotd's output:"
	sed 's/^/#   /' "$T/slotd.log" | tail -n 40
fi

coord_stop
check_fails "nginx stopped: its HTTPS port is closed" _coord_listening "$COORD_HTTPS_PORT"
finish
