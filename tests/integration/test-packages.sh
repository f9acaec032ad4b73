#!/usr/bin/env bash
# test-packages.sh: what slotctl accepts as a package and what it refuses.
# Good packages in every compression and both signature formats install;
# bad signatures, bad metadata and unsafe or broken archives are refused
# with exit 3 and a reason, leaving the active slot untouched and the
# inactive slot's previous tree and state restored, with nothing written
# outside the slot.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

make_key main
write_config

# --- The packaging scripts -----------------------------------------------------
key_before=$(sha256sum "$T/secret/main.key" "$T/secret/main.pub")
check_fails "slot-keygen refuses to overwrite an existing key pair" "$SLOT_KEYGEN" "$T/secret/main"
check_eq "the existing key pair is unchanged" "$key_before" "$(sha256sum "$T/secret/main.key" "$T/secret/main.pub")"

src=$T/pkg-src
mkdir -p "$src/b-dir/z" "$src/a-dir"
echo one >"$src/b-dir/z/file"
echo two >"$src/a-dir/file"
echo three >"$src/-leading-dash"
ln -s a-dir/file "$src/link"
src_before=$(tree_sum "$src")
pkg=$("$SLOT_PACKAGE" -n demo-app -v 1.2.3-rc.1+build.7 -k "$T/secret/main.key" -o "$T/pkgs" "$src")
check_eq "slot-package prints the package path" "$T/pkgs/demo-app-1.2.3-rc.1+build.7.tar.zst" "$pkg"
check "slot-package wrote the signature beside it, valid for minisign" \
	minisign -V -q -p "$T/secret/main.pub" -m "$pkg"
check_eq "slot-package left the source folder as it was" "$src_before" "$(tree_sum "$src")"
listing=$(zstd -dc "$pkg" | tar -tv --numeric-owner -f - 2>&1)
check_eq "slot.ini is the archive's first entry" slot.ini "$(head -1 <<<"$listing" | awk '{print $NF}')"
names=$(zstd -dc "$pkg" | tar -t -f - | tail -n +2)
check_eq "the tree follows, sorted by name" "$(LC_ALL=C sort <<<"$names")" "$names"
check_eq "the tree holds every source entry" "-leading-dash a-dir/ a-dir/file b-dir/ b-dir/z/ b-dir/z/file link" \
	"$(paste -sd ' ' <<<"$names")"
check_eq "every entry is owned by 0/0" "" "$(awk '$2 != "0/0"' <<<"$listing")"
check_eq "slot.ini holds the name and version" \
	"$(printf '[package]\nname = demo-app\nversion = 1.2.3-rc.1+build.7')" \
	"$(zstd -dc "$pkg" | tar -xO -f - slot.ini)"
sc verify "$pkg"
check_rc "slotctl verifies what slot-package made" 0
for bad in "a b" "../x" "a/b" ""; do
	check_fails "slot-package refuses the name '$bad'" \
		"$SLOT_PACKAGE" -n "$bad" -v 1.0.0 -k "$T/secret/main.key" -o "$T/pkgs" "$src"
done
check_fails "slot-package refuses the version '1 0'" \
	"$SLOT_PACKAGE" -n demo-app -v "1 0" -k "$T/secret/main.key" -o "$T/pkgs" "$src"
check_eq "the refused names wrote nothing" \
	"demo-app-1.2.3-rc.1+build.7.tar.zst demo-app-1.2.3-rc.1+build.7.tar.zst.minisig" \
	"$(find "$T/pkgs" -mindepth 1 -printf '%P\n' | LC_ALL=C sort | paste -sd ' ')"

# --- Good packages: every compression, installed in turn -------------------
n=0
for c in zstd gzip xz bzip2 none; do
	v=1.0.$n
	n=$((n + 1))
	pkg=$(make_pkg demo-app "$v" "$c")
	# A file name without the version, so that only slot.ini can tell.
	cp "$pkg" "$T/package-under-test"
	cp "$pkg.minisig" "$T/package-under-test.minisig"
	sc verify "$T/package-under-test"
	check_rc "verify of a $c package exits 0" 0
	check_out "verify of the $c package prints its version" "$v"
	sc install "$pkg"
	check_rc "install of the $c package ($v) exits 0" 0
	check_eq "the $c package's tree is served by current/" "$v" \
		"$(cat "$STORE/current/share/version" 2>&1)"
done

# A legacy (non-prehashed) signature, an explicit --sig, a second trusted
# key (rotation).
pkg=$(make_pkg demo-app 1.0.9)
minisign -S -l -s "$T/secret/main.key" -m "$pkg" -x "$pkg.minisig" </dev/null >/dev/null
# The signature line starts with the algorithm: "Ed" is base64 "RW", "ED" "RU".
check "the legacy signature was made (Ed, not ED)" grep -q '^RW' <<<"$(sed -n 2p "$pkg.minisig")"
sc verify "$pkg"
check_rc "verify of a legacy Ed signature exits 0" 0
mv "$pkg.minisig" "$T/elsewhere.sig"
sc verify "$pkg" --sig "$T/elsewhere.sig"
check_rc "verify with --sig pointing elsewhere exits 0" 0
make_key second
PKG_KEY=$T/secret/second.key
pkg=$(make_pkg demo-app 1.1.0)
unset PKG_KEY
sc install "$pkg"
check_rc "a package signed by the second trusted key installs (exit 0)" 0

# Known state for the refusals below: 1.1.0 active, the inactive slot has
# 1.0.4 (the "none" package) marked good.
check_eq "starting point of the refusals" "active=b a=good/1.0.4 b=good/1.1.0" "$(slot_summary)"

# --- Refusals ------------------------------------------------------------------
# Sentinels outside the store that archives aim at.
echo "do not touch" >"$T/hl-target"
passwd_sum=$(sha256sum /etc/passwd)

# outside_untouched: nothing escaped the slot.
outside_untouched() {
	local bad
	bad=$(find "$T" -name 'escaped*' 2>/dev/null)
	[ -z "$bad" ] || { echo "written outside the slot: $bad"; return 1; }
	if [ -e "$STORE/outside" ] || [ -L "$STORE/outside" ]; then
		echo "$STORE/outside exists"
		return 1
	fi
	[ "$(stat -c %h "$T/hl-target")" = 1 ] || { echo "$T/hl-target gained a hard link"; return 1; }
	[ "$(cat "$T/hl-target")" = "do not touch" ] || { echo "$T/hl-target was changed"; return 1; }
	[ "$(sha256sum /etc/passwd)" = "$passwd_sum" ] || { echo "/etc/passwd changed!"; return 1; }
	# The slots hold nothing but the two package trees.
	bad=$(find "$STORE" -mindepth 1 -maxdepth 2 ! -path "$STORE/slots" ! -path "$STORE/slots/a" \
		! -path "$STORE/slots/b" ! -path "$STORE/current")
	[ -z "$bad" ] || { echo "unexpected entries in the store: $bad"; return 1; }
}

# store_print: every fact of the store a refusal must leave as it was.
store_print() {
	_json_format "active={active_slot} phase={phase}
a={slots.a.state}/{slots.a.version}/{slots.a.installed_at}
b={slots.b.state}/{slots.b.version}/{slots.b.installed_at}" \
		"$("$SLOTCTL" -c "$CONF" --json status 2>/dev/null)"
	echo "current=$(readlink "$STORE/current")"
	echo "== a"
	tree_sum "$STORE/slots/a"
	echo "== b"
	tree_sum "$STORE/slots/b"
}

# refused DESC FRAGMENT INSTALL_ARG...: installs, expects exit 3, FRAGMENT on
# stderr, the store exactly as before, last_result "rejected", nothing
# outside the slot.
refused() {
	local desc=$1 fragment=$2 before
	shift 2
	before=$(store_print)
	sc install "$@"
	check_rc "$desc: exit 3" 3
	check_err "$desc: stderr says why ('$fragment')" "$fragment"
	check_eq "$desc: stderr is one 'slotctl: error:' line" "1 yes" \
		"$(printf '%s\n' "$err" | grep -c .) $([[ $err == "slotctl: error: "* ]] && echo yes || echo no)"
	check_eq "$desc: active slot, current and both slot trees unchanged" "$before" "$(store_print)"
	check_eq "$desc: phase idle, last_result rejected" "idle rejected" \
		"$(_json_format "{phase} {last_result.result}" "$("$SLOTCTL" -c "$CONF" --json status 2>/dev/null)")"
	check "$desc: nothing written outside the slot" outside_untouched
}

# Every refused package gets its own, higher version, so a package that is
# wrongly accepted cannot make the next case look like a downgrade.
# next_version sets $ver.
nv=0
next_version() {
	nv=$((nv + 1))
	ver=2.0.$nv
}

# Signatures.
next_version
pkg=$(make_pkg demo-app "$ver")
"$PYTHON" -S - "$pkg" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(f.seek(0, 2) // 2)
    b = f.read(1)
    f.seek(-1, 1)
    f.write(bytes([b[0] ^ 0x01]))
PY
refused "tampered package (one bit flipped)" "signature" "$pkg"
sc verify "$pkg"
check_rc "verify of the tampered package exits 3" 3
check_err "verify of the tampered package says why" "signature"
sc --json install "$pkg"
check "a refusal with --json still prints one JSON document" "$PYTHON" -S -c 'import json,sys; json.loads(sys.stdin.read())' <<<"$out"
check_eq "the JSON's last_result.error holds the reason" yes \
	"$(e=$(jq_get last_result.error "$out"); [[ ${e,,} == *signature* ]] && echo yes || echo "no: $e")"

# The version in slot.ini must not count before the signature is checked:
# a tampered package claiming the active version is not "up to date".
pkg=$(make_pkg demo-app 1.1.0)
printf '\x00' | dd of="$pkg" bs=1 seek=100 conv=notrunc status=none
refused "tampered package claiming the active version" "signature" "$pkg"
pkg=$(make_pkg demo-app 0.0.1)
printf '\x00' | dd of="$pkg" bs=1 seek=100 conv=notrunc status=none
refused "tampered package claiming a lower version" "signature" "$pkg"

make_key intruder untrusted
PKG_KEY=$T/secret/intruder.key
next_version
pkg=$(make_pkg demo-app "$ver")
unset PKG_KEY
refused "signature by an untrusted key" "key" "$pkg"

next_version
pkg=$(make_pkg demo-app "$ver")
sed -i 's/^trusted comment: .*/trusted comment: timestamp:0\tfile:forged.tar.zst\thashed/' "$pkg.minisig"
refused "tampered trusted comment" "comment" "$pkg"

next_version
pkg=$(make_pkg demo-app "$ver")
rm "$pkg.minisig"
refused "missing .minisig" "$pkg.minisig" "$pkg"

next_version
pkg=$(make_pkg demo-app "$ver")
printf 'untrusted comment: x\nnot base64 at all\ntrusted comment: x\nAAAA\n' >"$pkg.minisig"
refused "malformed .minisig" "signature" "$pkg"

next_version
pkg=$(make_pkg demo-app "$ver")
head -c 10 "$pkg.minisig" >"$T/short.minisig"
refused "a .minisig cut short, given with --sig" "$T/short.minisig" "$pkg" --sig "$T/short.minisig"

# Keys: a missing key file, a malformed .pub. Exit 2 (config) or 3 (input)
# are both defensible; the message must name the key path.
next_version
pkg=$(make_pkg demo-app "$ver")
before=$(store_print)
write_config "trust.keys=$T/no-such-key.pub"
sc install "$pkg"
check "missing key file: exit non-zero (saw $rc)" test "$rc" -ne 0 -a "$rc" -ne 75
check_err "missing key file: the message names the key path" "$T/no-such-key.pub"
check_eq "missing key file: store unchanged" "$before" "$(store_print)"
echo "this is not a minisign public key" >"$T/garbage.pub"
write_config "trust.keys=$T/garbage.pub"
sc install "$pkg"
check "malformed .pub: exit non-zero (saw $rc)" test "$rc" -ne 0 -a "$rc" -ne 75
check_err "malformed .pub: the message names the key path" "$T/garbage.pub"
check_eq "malformed .pub: store unchanged" "$before" "$(store_print)"
write_config

# Metadata.
next_version
CRAFT_VERSION=$ver craft_tar "$T/no-ini.tar" --no-ini file:bin/app file:share/version
sign "$T/no-ini.tar"
refused "package without slot.ini" "slot.ini" "$T/no-ini.tar"

craft_tar "$T/bad-ini.tar" --ini $'[package]\nname demo-app\nversion = 2.9.0\n' file:bin/app
sign "$T/bad-ini.tar"
refused "malformed slot.ini (a line without '=')" "slot.ini" "$T/bad-ini.tar"

craft_tar "$T/no-version.tar" --ini $'[package]\nname = demo-app\n' file:bin/app
sign "$T/no-version.tar"
refused "slot.ini without a version" "version" "$T/no-version.tar"

# The package paths hold the name and version: the fragments must be words
# only the message can add.
next_version
refused "another package name" "demo-app" "$(make_pkg other-app "$ver")"
refused "an invalid version (1.0)" "version" "$(make_pkg demo-app 1.0)"

# Unsafe archives. Each starts with harmless files, so a refusal in the
# middle has something to undo.
unsafe() { # unsafe DESC FRAGMENT ENTRY...
	local desc=$1 fragment=$2 file
	shift 2
	next_version
	file=$T/unsafe-$nv.tar
	CRAFT_VERSION=$ver craft_tar "$file" file:bin/app file:share/version "$@"
	sign "$file"
	refused "$desc" "$fragment" "$file"
}
unsafe "absolute path" "$T/escaped-absolute" "file:$T/escaped-absolute"
unsafe "../ path" "../../../escaped-dotdot" "file:../../../escaped-dotdot"
unsafe "symlink to /etc/passwd" "/etc/passwd" "symlink:passwd:/etc/passwd"
unsafe "symlink x -> ../../outside, then a file through it" "outside" \
	"symlink:x:../../outside" "file:x/escaped-through-link"
# x -> deep/link/.. stays inside when read as text, but deep/link is itself
# a symlink to the slot's root, so on disk x is the slots/ folder.
unsafe "symlink through another symlink, then a file through it" '"x"' \
	"dir:deep" "symlink:deep/link:.." "symlink:x:deep/link/.." "file:x/escaped-chain"
unsafe "hard link to /etc/passwd" "/etc/passwd" "hardlink:passwd:/etc/passwd"
unsafe "hard link with .." "hl-target" "hardlink:hl:../../../hl-target"
unsafe "character device node" "dev-null" "chr:dev-null"
unsafe "block device node" "dev-loop" "blk:dev-loop"
unsafe "FIFO" "fifo" "fifo:fifo"

# The inactive slot's state is restored whatever it was: here "bad".
sc mark-bad a
check_eq "slot a marked bad for the next refusal" "0 bad" "$rc $(slot_state a)"
unsafe "FIFO, into a slot marked bad" "fifo" "fifo:fifo"
sc mark-good a
check_eq "slot a marked good again" "0 good" "$rc $(slot_state a)"

next_version
CRAFT_VERSION=$ver craft_tar "$T/ini-link.tar" --no-ini "symlink:slot.ini:/etc/passwd" file:bin/app
sign "$T/ini-link.tar"
refused "slot.ini is a symlink to /etc/passwd" "slot.ini" "$T/ini-link.tar"

# Limits and broken archives.
write_config slots.max_unpacked_size=1M
unsafe "2 MB of zeros past max_unpacked_size = 1M" "1048576" "zero:share/zeros:2097152"
write_config slots.max_package_size=1K
next_version
refused "a package file over max_package_size = 1K" "1024" "$(make_pkg demo-app "$ver" none)"
write_config

# Free space: min_free_space far above what the disk has.
next_version
pkg=$(make_pkg demo-app "$ver")
before=$(store_print)
write_config slots.min_free_space=1000000G
sc install "$pkg"
check "min_free_space out of reach: exit 1 or 3 (saw $rc)" test "$rc" = 1 -o "$rc" = 3
check_err "min_free_space out of reach: the message says free space is short" "space"
check_eq "min_free_space out of reach: store unchanged" "$before" "$(store_print)"
write_config

unsafe "hard link to an entry the archive lacks" "no-such-entry" "hardlink:h:no-such-entry"

file=$T/truncated.tar
next_version
CRAFT_VERSION=$ver craft_tar "$file" --truncate 3000 file:bin/app zero:share/blob:20000
sign "$file"
refused "truncated tar (cut, then signed)" "truncated" "$file"

file=$T/truncated.tar.gz
next_version
CRAFT_VERSION=$ver "$PYTHON" -S - "$file" <<'PY'
import gzip, io, os, sys, tarfile
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as tar:
    for name, data in (("slot.ini", ("[package]\nname = demo-app\nversion = %s\n" % os.environ["CRAFT_VERSION"]).encode()),
                       ("share/blob", os.urandom(200000))):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
data = gzip.compress(buf.getvalue(), compresslevel=1)
open(sys.argv[1], "wb").write(data[: len(data) // 2])
PY
sign "$file"
refused "truncated gzip stream (cut, then signed)" "truncated" "$file"

# Package paths that are not readable packages: exit 1 or 3, a message
# naming the path, nothing changed.
before=$(store_print)
mkdir -p "$T/a-folder.tar.zst"
next_version
cp "$(make_pkg demo-app "$ver").minisig" "$T/a-folder.tar.zst.minisig"
sc install "$T/a-folder.tar.zst"
check "a folder as the package: exit 1 or 3 (saw $rc)" test "$rc" = 1 -o "$rc" = 3
check_err "a folder as the package: the message names it" "$T/a-folder.tar.zst"
check_eq "a folder as the package: store unchanged" "$before" "$(store_print)"
sc install "$T/no-such-package.tar.zst"
check "a missing package: exit 1 or 3 (saw $rc)" test "$rc" = 1 -o "$rc" = 3
check_err "a missing package: the message names it" "$T/no-such-package.tar.zst"
check_eq "a missing package: store unchanged" "$before" "$(store_print)"

# --- Accepted with repairs: setuid/setgid bits and foreign owners dropped ----------
# Also links that stay inside the slot, which are allowed.
file=$T/setuid.tar
CRAFT_VERSION=3.0.0 craft_tar "$file" file:share/version file:bin/suid:4755:4321 file:bin/sgid:2755:4321 \
	symlink:share/current-version:version symlink:bin/up:../share hardlink:bin/suid-again:bin/suid
sign "$file"
sc install "$file"
check_rc "a package with setuid/setgid files and inner links installs (exit 0)" 0
check_eq "3.0.0 is active" "a good 3.0.0" "$(active_slot) $(slot_state a) $(slot_version a)"
check_eq "the setuid bit is dropped (mode 755)" 755 "$(stat -c %a "$STORE/current/bin/suid" 2>&1)"
check_eq "the setgid bit is dropped (mode 755)" 755 "$(stat -c %a "$STORE/current/bin/sgid" 2>&1)"
check_eq "the archive's owner 4321 is replaced by the agent's user" "$(id -u):$(id -g)" \
	"$(stat -c %u:%g "$STORE/current/bin/suid" 2>&1)"
check_eq "a symlink inside the slot is kept" version "$(readlink "$STORE/current/share/current-version")"
check_eq "a symlink to a sibling folder is kept" ../share "$(readlink "$STORE/current/bin/up")"
check_eq "a hard link inside the slot is kept (same inode)" \
	"$(stat -c %i "$STORE/current/bin/suid" 2>&1)" "$(stat -c %i "$STORE/current/bin/suid-again" 2>&1)"
check "nothing outside the slot after the setuid package" outside_untouched

finish
