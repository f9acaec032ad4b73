#!/usr/bin/env bash
# test-install.sh: `make install DESTDIR=... PREFIX=/usr` lays out exactly the
# documented files, with the right modes, and what it lays out works: the
# programs run, the man pages render without warnings, the units name the
# installed binary, the tmpfiles entry and the journal catalog parse with
# systemd's own parsers, and the catalog explains every MESSAGE_ID slotd
# logs. Nothing is installed outside the test's folder.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEST=$T/dest
t0=$(date +%s%N)
if ! make -C "$ROOT" install DESTDIR="$DEST" PREFIX=/usr >"$T/make.log" 2>&1; then
	_fail "make install DESTDIR=\$T/dest PREFIX=/usr" "$(tail -n 30 "$T/make.log")"
	finish
fi
_pass "make install DESTDIR=\$T/dest PREFIX=/usr ($((($(date +%s%N) - t0) / 1000000)) ms)"

# --- the layout ---------------------------------------------------------------

# Every file and its mode; anything extra or missing fails.
expected="0755 usr/bin/slot-keygen
0755 usr/bin/slot-package
0755 usr/bin/slot-publish
0755 usr/bin/slotctl
0755 usr/bin/slotd
0644 usr/lib/systemd/catalog/slotd.catalog
0644 usr/lib/systemd/system/slotd.service
0644 usr/lib/systemd/system/slotd.socket
0644 usr/lib/systemd/system/slotd@.service
0644 usr/lib/tmpfiles.d/slotd.conf
0644 usr/share/doc/slotd/examples/hooks/README.md
0755 usr/share/doc/slotd/examples/hooks/health-check
0755 usr/share/doc/slotd/examples/hooks/post-commit
0755 usr/share/doc/slotd/examples/hooks/post-install
0755 usr/share/doc/slotd/examples/hooks/pre-install
0644 usr/share/doc/slotd/examples/slotd.conf
0644 usr/share/doc/slotd/examples/translator-worker.service
0644 usr/share/man/man5/slotd.conf.5
0644 usr/share/man/man8/slotctl.8
0644 usr/share/man/man8/slotd.8"
actual=$(cd "$DEST" && find . -mindepth 1 ! -type d -printf '%#m %P\n' | LC_ALL=C sort -k2)
if [ "$expected" = "$actual" ]; then
	_pass "the installed files and their modes are exactly the documented ones"
else
	_fail "the installed files and their modes are exactly the documented ones" \
		"- expected, + installed:
$(diff <(printf '%s\n' "$expected") <(printf '%s\n' "$actual") | sed -n 's/^</-/p; s/^>/+/p')"
fi

# Only regular files: a symlink into the build tree would dangle once the
# package is built from DESTDIR.
others=$(cd "$DEST" && find . -mindepth 1 ! -type d ! -type f -printf '%y %P\n')
check_eq "every installed entry is a regular file or a folder" "" "$others"

dirs=$(cd "$DEST" && find . -mindepth 1 -type d ! -perm 0755 -printf '%#m %P\n')
check_eq "every installed folder is 0755" "" "$dirs"

# The example hooks are the ones in hooks/: a hook added there and not to
# the install rule would be missing from the documented examples.
missing=
for h in "$ROOT"/hooks/*; do
	[ -f "$h" ] || continue
	n=${h##*/}
	if [ ! -f "$DEST/usr/share/doc/slotd/examples/hooks/$n" ]; then
		missing="$missing $n"
	elif ! cmp -s "$h" "$DEST/usr/share/doc/slotd/examples/hooks/$n"; then
		missing="$missing $n(differs)"
	fi
done
check_eq "every file of hooks/ is installed as an example, unchanged" "" "${missing# }"

# --- the programs ----------------------------------------------------------------

for p in slotd slotctl slot-keygen slot-package slot-publish; do
	bin=$DEST/usr/bin/$p
	"$bin" --help >"$T/help.out" 2>"$T/help.err"
	status=$?
	help=$(cat "$T/help.out" "$T/help.err")
	if [[ $help == *"usage: $p "* && $help != *"unknown option"* ]]; then
		_pass "installed $p runs and prints its usage on --help"
	else
		_fail "installed $p runs and prints its usage on --help" "exit $status
$help"
	fi
	# --help is a request, not a mistake: the usage on stdout (so that
	# `$p --help | less` shows it) and exit 0.
	if [ "$status" -eq 0 ] && grep -q "usage: $p " "$T/help.out"; then
		_pass "installed $p --help exits 0 with the usage on stdout"
	else
		_fail "installed $p --help exits 0 with the usage on stdout" "exit $status
stdout: $(cat "$T/help.out")
stderr: $(cat "$T/help.err")"
	fi
done

# --- the man pages -------------------------------------------------------------

for m in man8/slotd.8 man8/slotctl.8 man5/slotd.conf.5; do
	f=$DEST/usr/share/man/$m
	if [ ! -f "$f" ]; then
		_fail "man page $m renders without warnings" "$f is missing"
		continue
	fi
	warn=$(MANWIDTH=80 man --warnings -l "$f" 2>&1 >"$T/man.out")
	status=$?
	lines=$(wc -l <"$T/man.out")
	if [ "$status" -eq 0 ] && [ -z "$warn" ] && [ "$lines" -gt 10 ]; then
		_pass "man page $m renders without warnings ($lines lines)"
	else
		_fail "man page $m renders without warnings" "exit $status, $lines lines
$warn"
	fi
done

# --- the units -------------------------------------------------------------------

unitdir=$DEST/usr/lib/systemd/system
for u in slotd.service slotd@.service slotd.socket; do
	left=$(grep -n '@[A-Z_]*@' "$unitdir/$u")
	check_eq "$u: no @PLACEHOLDER@ is left" "" "$left"
done
for u in slotd.service slotd@.service; do
	exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unitdir/$u")
	check_eq "$u: ExecStart runs the installed /usr/bin/slotd" /usr/bin/slotd "$exe"
	if [ -x "$DEST$exe" ]; then
		_pass "$u: its ExecStart binary is installed (\$DEST$exe)"
	else
		_fail "$u: its ExecStart binary is installed" "$DEST$exe is missing"
	fi
done
# The units are the source units with only the binary folder filled in.
for u in slotd.service slotd@.service slotd.socket; do
	check_eq "$u: equals systemd/$u with @BINDIR@ = /usr/bin" \
		"$(sed 's|@BINDIR@|/usr/bin|g' "$ROOT/systemd/$u" | sha256sum)" \
		"$(sha256sum <"$unitdir/$u")"
done

# --- tmpfiles.d ----------------------------------------------------------------------

# systemd-tmpfiles parses it for real, creating what it lists under a
# private root.
mkdir -p "$T/tmpfiles-root"
out=$(systemd-tmpfiles --root="$T/tmpfiles-root" --create \
	"$DEST/usr/lib/tmpfiles.d/slotd.conf" 2>&1)
status=$?
if [ "$status" -eq 0 ] && [ -z "$out" ]; then
	_pass "tmpfiles.d/slotd.conf parses and applies without a message"
else
	_fail "tmpfiles.d/slotd.conf parses and applies without a message" "exit $status
$out"
fi
check_eq "tmpfiles.d/slotd.conf makes the state folder 0700 and the config folders" \
	"0700 var/lib/slotd|0755 etc/slotd|0755 etc/slotd/hooks.d|0755 etc/slotd/keys.d" \
	"$(cd "$T/tmpfiles-root" &&
		printf '%s|' "$(stat -c '%#a %n' var/lib/slotd)" \
			"$(stat -c '%#a %n' etc/slotd etc/slotd/hooks.d etc/slotd/keys.d | paste -sd'|')" |
		sed 's/|$//')"

# --- the journal catalog -----------------------------------------------------------

catalog=$DEST/usr/lib/systemd/catalog/slotd.catalog

# journalctl's own parser, on a copy under a private root (DESTDIR stays
# exactly the installed files).
mkdir -p "$T/catroot/usr/lib/systemd/catalog"
cp "$catalog" "$T/catroot/usr/lib/systemd/catalog/"
out=$(journalctl --root="$T/catroot" --update-catalog 2>&1)
status=$?
if [ "$status" -eq 0 ] && [ -z "$out" ] && [ -s "$T/catroot/var/lib/systemd/catalog/database" ]; then
	_pass "journalctl --update-catalog parses the catalog without a message"
else
	_fail "journalctl --update-catalog parses the catalog without a message" "exit $status
$out"
fi
journalctl --root="$T/catroot" --list-catalog >"$T/catalog.list" 2>&1

# The MESSAGE_ID of every event type, from the table in agent/outbox.c.
"$PYTHON" -S - "$ROOT/agent/outbox.c" >"$T/ids" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
for name, mid in re.findall(r'\{\s*"(worker_[a-z_]+)"\s*,\s*"([0-9a-f]{32})"\s*\}', src):
    print(mid, name)
PY
n_ids=$(wc -l <"$T/ids")
spec_types="worker_agent_started worker_update_available worker_update_started
worker_update_downloaded worker_update_installed worker_update_switched
worker_update_completed worker_update_failed worker_update_rejected
worker_rollback_started worker_rollback_completed worker_rollback_failed
worker_version_drift worker_events_dropped"
missing=
for ty in $spec_types; do
	grep -q " $ty\$" "$T/ids" || missing="$missing $ty"
done
check_eq "agent/outbox.c gives a MESSAGE_ID to every event type of the SPEC ($n_ids found)" \
	"" "${missing# }"

problems=
while read -r mid name; do
	n=$(grep -cx -- "-- $mid" "$catalog")
	if [ "$n" -ne 1 ]; then
		problems="$problems
$name ($mid): $n catalog entries"
		continue
	fi
	# The entry: from its header to the next header.
	subject=$(awk -v h="-- $mid" '$0 == h {on = 1; next} /^-- [0-9a-f]{32}$/ {on = 0}
		on && /^Subject: / {sub(/^Subject: /, ""); print; exit}' "$catalog")
	if [ -z "$subject" ]; then
		problems="$problems
$name ($mid): the entry has no Subject line"
	elif [[ $subject != *"($name)"* ]]; then
		problems="$problems
$name ($mid): its Subject does not name the event: $subject"
	elif ! grep -q "^$mid .*$name" "$T/catalog.list"; then
		problems="$problems
$name ($mid): journalctl --list-catalog does not list it"
	fi
done <"$T/ids"
check_eq "every MESSAGE_ID of agent/outbox.c has exactly one catalog entry with a Subject naming its event" \
	"" "${problems#$'\n'}"

# And no entry for an ID slotd never logs (a stale or mistyped one).
stale=
while read -r mid; do
	grep -q "^$mid " "$T/ids" || stale="$stale $mid"
done < <(sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' "$catalog")
check_eq "every catalog entry is for a MESSAGE_ID slotd logs" "" "${stale# }"

finish
