#!/usr/bin/env bash
# sdbox: a throwaway systemd 252 for slotd's integration tests, on a host
# whose PID 1 is not systemd. This file owns booting it, running commands in
# it, handing out its system bus address and tearing it down without leaving
# anything behind on the host.
#
#   sdbox.sh start STATE_DIR UNITS_DIR [BIND_DIR...]
#   sdbox.sh exec  STATE_DIR CMD [ARG...]
#   sdbox.sh bus   STATE_DIR           # DBUS_SYSTEM_BUS_ADDRESS for the host
#   sdbox.sh pid   STATE_DIR           # host PID of the box's systemd
#   sdbox.sh stop  STATE_DIR           # idempotent
#
# Sourced, it defines only sdbox_start, sdbox_exec, sdbox_bus, sdbox_pid and
# sdbox_stop, which run the commands above in a child process.
#
# What the box is (see /work/shared/notes/real-systemd.md for why):
# - private PID, mount, UTS, IPC and cgroup namespaces; the host's network
#   namespace, so loopback servers are reachable from both sides;
# - its own cgroup, <cgroup2 mount>/sdbox-*, which is the root of the box's
#   cgroup namespace;
# - the host's root filesystem read-only; fresh tmpfs on /run, /tmp,
#   /var/tmp, /dev and /dev/shm; /etc and /var as overlays whose writes land
#   on a tmpfs; fresh proc (with /proc/sys read-only), devpts, mqueue and a
#   read-only sysfs; none of the host's other mounts;
# - STATE_DIR and UNITS_DIR (read-only) and each BIND_DIR (read-write)
#   visible at the same path as on the host, whatever they live under;
# - units: UNITS_DIR first, then a whitelist (sdbox/units/*.target, passive
#   stubs, copies of the stock journald, dbus and poweroff units), never the
#   stock .wants/ folders, no generators.
# A unit inside runs host binaries at their host paths. Units a test wants
# started at boot go into UNITS_DIR/sdbox.target.wants/.
#
# Environment: SDBOX_BOOT_TIMEOUT (seconds, default 20), SDBOX_STOP_TIMEOUT
# (seconds systemd gets to power off before the box is killed, default 10).

SDBOX_SH=$(readlink -f "${BASH_SOURCE[0]}")

sdbox_start() { "$SDBOX_SH" start "$@"; }
sdbox_exec() { "$SDBOX_SH" exec "$@"; }
sdbox_bus() { "$SDBOX_SH" bus "$@"; }
sdbox_pid() { "$SDBOX_SH" pid "$@"; }
sdbox_stop() { "$SDBOX_SH" stop "$@"; }

# Sourced: the functions above are the whole library.
[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0

set -euo pipefail
SDBOX_HOME=${SDBOX_SH%/*}

# Stock units copied into the whitelist, from /lib/systemd/system.
SDBOX_STOCK_UNITS=(
	dbus.socket dbus.service
	systemd-journald.socket systemd-journald-dev-log.socket
	systemd-journald.service
	shutdown.target umount.target final.target
	poweroff.target systemd-poweroff.service
)

# Targets stock units and test units commonly name; empty in the box.
SDBOX_STUB_TARGETS=(
	local-fs-pre.target local-fs.target swap.target
	timers.target paths.target slices.target
	network-pre.target network.target network-online.target
	nss-lookup.target nss-user-lookup.target
	remote-fs-pre.target remote-fs.target
	time-set.target time-sync.target getty.target
	emergency.target rescue.target
)

# Capabilities the box's systemd (and so every unit) never gets: they act on
# the whole machine, not on the namespaces. CAP_SYS_BOOT stays: reboot(2) in
# a PID namespace only ends that namespace.
SDBOX_DROP_CAPS=-sys_module,-sys_time,-sys_rawio,-sys_pacct,-syslog,-net_admin,-mac_admin,-mac_override,-audit_control,-audit_read,-audit_write,-wake_alarm,-block_suspend

die() {
	echo "sdbox: error: $*" >&2
	exit 1
}

now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

# The pid namespace inode of a process, or nothing when it is gone.
pidns_of() {
	stat -L -c %i "/proc/$1/ns/pid" 2>/dev/null || true
}

# Host PIDs of every process in the pid namespace with inode $1.
pidns_members() {
	local ino=$1 line
	stat -L -c '%i %n' /proc/[0-9]*/ns/pid 2>/dev/null |
		while read -r line; do
			[[ ${line%% *} == "$ino" ]] || continue
			line=${line#* /proc/}
			echo "${line%%/*}"
		done
}

# "STATE PPID" of a process, from /proc/PID/stat.
proc_state_ppid() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	local st ppid
	read -r st ppid _ <<<"${stat##*) }"
	echo "$st $ppid"
}

# The host PID of the box's systemd, when it runs; checks the recorded pid
# namespace so a recycled PID is never taken for the box.
box_pid() {
	local state=$1 pid ino
	pid=$(cat "$state/pid" 2>/dev/null) || return 1
	ino=$(cat "$state/pidns" 2>/dev/null) || return 1
	[[ -n $pid && $(pidns_of "$pid") == "$ino" ]] || return 1
	echo "$pid"
}

in_box() {
	local pid=$1
	shift
	nsenter -t "$pid" -m -p -u -i -C -- "$@"
}

# The host's cgroup2 mount: /sys/fs/cgroup/unified on a hybrid host.
cgroup2_root() {
	local m
	for m in /sys/fs/cgroup/unified /sys/fs/cgroup; do
		if [[ $(stat -f -c %T "$m" 2>/dev/null) == cgroup2fs ]]; then
			echo "$m"
			return 0
		fi
	done
	return 1
}

# Fills $state/whitelist with the units the box may load besides UNITS_DIR.
make_whitelist() {
	local dir=$1/whitelist u
	rm -rf "$dir"
	mkdir -p "$dir"
	cp "$SDBOX_HOME"/units/*.target "$dir"/
	for u in "${SDBOX_STOCK_UNITS[@]}"; do
		cp "/lib/systemd/system/$u" "$dir/$u" || die "missing stock unit /lib/systemd/system/$u"
	done
	for u in "${SDBOX_STUB_TARGETS[@]}"; do
		[[ -e $dir/$u ]] && continue
		printf '[Unit]\nDescription=%s (sdbox stub)\n' "$u" >"$dir/$u"
	done
}

cmd_start() {
	[[ $# -ge 2 ]] || die "usage: sdbox.sh start STATE_DIR UNITS_DIR [BIND_DIR...]"
	[[ $(id -u) == 0 ]] || die "start needs root"
	local state units d binds=() cgroot cg name pid spid ino
	mkdir -p "$1" || die "cannot create state dir $1"
	state=$(readlink -f "$1")
	[[ -d $2 ]] || die "units dir $2 does not exist"
	units=$(readlink -f "$2")
	shift 2
	for d in "$@"; do
		[[ $d == /* ]] || die "bind dir $d is not an absolute path"
		[[ -d $d ]] || die "bind dir $d does not exist"
		binds+=("$(readlink -f "$d")")
	done
	if box_pid "$state" >/dev/null; then
		die "a box already runs from $state (pid $(cat "$state/pid"))"
	fi
	cmd_stop "$state" >/dev/null 2>&1 || true
	trap 'start_failed "$state" "interrupted"' INT TERM

	local t0
	t0=$(now_ms)
	make_whitelist "$state"
	mkdir -p "$state/empty" "$state/root"
	rm -f "$state/console.log" "$state/pid" "$state/pidns" "$state/script.pid"

	cgroot=$(cgroup2_root) || die "no cgroup2 mount on this host"
	for _ in 1 2 3; do
		name=sdbox-$$-$SRANDOM
		echo "$cgroot/$name" >"$state/cgroup"
		mkdir "$cgroot/$name" 2>/dev/null && break
		name=
	done
	[[ -n $name ]] || start_failed "$state" "cannot create a cgroup under $cgroot"
	cg=$cgroot/$name

	# script gives the box a pty for its console and copies what systemd
	# writes there to console.log; setsid keeps the box out of the caller's
	# session and process group.
	local inner
	inner=$(printf '%q ' unshare --pid --fork --mount --propagation private \
		--mount-proc --uts --ipc -- \
		bash "$SDBOX_SH" __stage1 "$state" "$cg" "$name" "$units" "${binds[@]}")
	# The child records its PID itself, so that even a start killed right
	# after the fork leaves stop a way to find the box.
	(
		echo "$BASHPID" >"$state/script.pid"
		exec setsid script -qfe -E never -c "exec $inner" "$state/console.log" \
			</dev/null >/dev/null 2>"$state/script.err"
	) &
	spid=$!

	# script -> unshare -> stage1, which becomes systemd.
	local deadline=$(($(now_ms) + ${SDBOX_BOOT_TIMEOUT:-20} * 1000))
	until pid=$(init_below "$spid"); do
		alive "$spid" || start_failed "$state" "the box exited at once"
		(($(now_ms) < deadline)) || start_failed "$state" "the box did not start"
		sleep 0.01
	done
	ino=$(pidns_of "$pid")
	[[ -n $ino ]] || start_failed "$state" "the box exited at once"
	echo "$pid" >"$state/pid"
	echo "$ino" >"$state/pidns"

	local comm st bus=unix:path=/proc/$pid/root/run/dbus/system_bus_socket
	while :; do
		(($(now_ms) < deadline)) || start_failed "$state" "systemd was not running after ${SDBOX_BOOT_TIMEOUT:-20}s (last state: ${st:-none})"
		comm=$(cat "/proc/$pid/comm" 2>/dev/null) || start_failed "$state" "the box exited during boot"
		if [[ $comm == systemd ]]; then
			st=$(in_box "$pid" systemctl is-system-running 2>/dev/null) || true
			if [[ $st == running || $st == degraded ]] &&
				busctl --address="$bus" --timeout=2 call org.freedesktop.DBus \
					/org/freedesktop/DBus org.freedesktop.DBus NameHasOwner \
					s org.freedesktop.systemd1 2>/dev/null | grep -q true; then
				break
			fi
		fi
		sleep 0.02
	done
	echo "$(($(now_ms) - t0))" >"$state/boot-ms"
	if [[ $st == degraded ]]; then
		echo "sdbox: warning: box is degraded:" >&2
		in_box "$pid" systemctl --failed --no-legend >&2 || true
	fi
}

start_failed() {
	local state=$1
	echo "sdbox: error: $2; last lines of $state/console.log:" >&2
	tail -n 25 "$state/console.log" 2>/dev/null | sed 's/^/  | /' >&2
	[[ -s $state/script.err ]] && sed 's/^/  ! /' "$state/script.err" >&2
	cmd_stop "$state" >&2 || true
	exit 1
}

cmd_exec() {
	[[ $# -ge 2 ]] || die "usage: sdbox.sh exec STATE_DIR CMD [ARG...]"
	local state=$1 pid wd=/
	shift
	pid=$(box_pid "$state") || die "no box runs from $state"
	# Keep the caller's working directory when the box has it (a bind dir,
	# the read-only host tree); open it through the box's root.
	[[ -d /proc/$pid/root$PWD ]] && wd=/proc/$pid/root$PWD
	exec env -u DBUS_SYSTEM_BUS_ADDRESS -u NOTIFY_SOCKET \
		nsenter -t "$pid" -m -p -u -i -C --wd="$wd" -- "$@"
}

cmd_bus() {
	[[ $# -eq 1 ]] || die "usage: sdbox.sh bus STATE_DIR"
	local pid
	pid=$(box_pid "$1") || die "no box runs from $1"
	echo "unix:path=/proc/$pid/root/run/dbus/system_bus_socket"
}

cmd_pid() {
	[[ $# -eq 1 ]] || die "usage: sdbox.sh pid STATE_DIR"
	box_pid "$1" || die "no box runs from $1"
}

# The box's init below script (script -> unshare -> init), once forked.
init_below() {
	local p
	p=$(pgrep -P "$1" || true)
	[[ -n $p ]] || return 1
	p=$(pgrep -P "${p%%$'\n'*}" || true)
	[[ -n $p ]] || return 1
	echo "${p%%$'\n'*}"
}

# Processes of the box that its systemd does not manage: what `sdbox.sh
# exec` started, with their children. They are in the box's pid namespace
# (inode $1) but outside its cgroup ($2, as the host sees it: /sdbox-...).
# The box's init ($3) is not one of them.
own_processes() {
	local ino=$1 cgpath=$2 init=$3 p line
	for p in $(pidns_members "$ino"); do
		[[ $p == "$init" ]] && continue
		alive "$p" || continue
		line=$(grep -m1 '^0::' "/proc/$p/cgroup" 2>/dev/null) || continue
		line=${line#0::}
		[[ $line == "$cgpath" || $line == "$cgpath"/* ]] && continue
		echo "$p"
	done
}

# systemd-shutdown SIGSTOPs everything in the namespace; an nsenter outside
# it then stops itself too and never reaps its child, and shutdown waits for
# that child until its timeout. Wake the stopped parents outside the box.
wake_outside_parents() {
	local ino=$1 init=$2 p ppid st
	for p in $(pidns_members "$ino"); do
		[[ $p == "$init" ]] && continue
		read -r _ ppid < <(proc_state_ppid "$p") || continue
		[[ $(pidns_of "$ppid") == "$ino" ]] && continue
		read -r st _ < <(proc_state_ppid "$ppid") || continue
		if [[ $st == T ]]; then
			kill -CONT "$ppid" 2>/dev/null || true
		fi
	done
}

# Whether a process runs; a zombie waiting for its reaper does not.
alive() {
	local st
	read -r st _ < <(proc_state_ppid "$1") || return 1
	[[ $st != [ZX] ]]
}

wait_gone() {
	local deadline=$(($(now_ms) + $2))
	while alive "$1"; do
		(($(now_ms) < deadline)) || return 1
		sleep 0.01
	done
}

cmd_stop() {
	[[ $# -eq 1 ]] || die "usage: sdbox.sh stop STATE_DIR"
	local state=$1 pid ino spid cg cgpath p own=() deadline t0 rc=0
	[[ -d $state ]] || return 0
	state=$(readlink -f "$state")
	t0=$(now_ms)
	ino=$(cat "$state/pidns" 2>/dev/null) || ino=
	spid=$(cat "$state/script.pid" 2>/dev/null) || spid=
	cg=$(cat "$state/cgroup" 2>/dev/null) || cg=
	cgpath=/${cg##*/}

	if ! pid=$(box_pid "$state") && [[ -n $spid ]] &&
		[[ $(cat "/proc/$spid/comm" 2>/dev/null) == script ]]; then
		# A start killed before it recorded the box: find the box's init
		# below script and kill it, which ends the box.
		deadline=$(($(now_ms) + 1000))
		until p=$(init_below "$spid"); do
			if ! alive "$spid" || (($(now_ms) >= deadline)); then
				break
			fi
			sleep 0.01
		done
		if [[ -n $p && $(pidns_of "$p") != "$(pidns_of $$)" ]]; then
			ino=$(pidns_of "$p")
			kill -KILL "$p" 2>/dev/null || true
		fi
		pid=
	fi

	if [[ -n $pid ]]; then
		# What we started inside goes first (SIGTERM, then SIGKILL after a
		# second), so that shutdown need not wait for it.
		mapfile -t own < <(own_processes "$ino" "$cgpath" "$pid")
		if ((${#own[@]})); then
			kill -TERM "${own[@]}" 2>/dev/null || true
			deadline=$(($(now_ms) + 1000))
			while ((${#own[@]})) && (($(now_ms) < deadline)); do
				wake_outside_parents "$ino" "$pid"
				sleep 0.01
				mapfile -t own < <(own_processes "$ino" "$cgpath" "$pid")
			done
			if ((${#own[@]})); then
				kill -KILL "${own[@]}" 2>/dev/null || true
			fi
		fi

		# RTMIN+4 is systemd's "poweroff". The init of a pid namespace
		# drops signals it has no handler for, as systemd early in its
		# boot, so send it again until systemd is gone. SIGCHLD: once it
		# has killed what remains, systemd-shutdown sleeps until a child
		# of its own exits, and only then sees that a process with a
		# parent outside (what `exec` started late) is gone too; without
		# a nudge it looks again only after 10 s.
		local next=0
		deadline=$(($(now_ms) + ${SDBOX_STOP_TIMEOUT:-10} * 1000))
		while alive "$pid" && (($(now_ms) < deadline)); do
			if (($(now_ms) >= next)); then
				kill -s RTMIN+4 "$pid" 2>/dev/null || true
				kill -s CHLD "$pid" 2>/dev/null || true
				next=$(($(now_ms) + 250))
			fi
			wake_outside_parents "$ino" "$pid"
			sleep 0.01
		done
		if alive "$pid"; then
			echo "sdbox: warning: systemd (pid $pid) did not power off within ${SDBOX_STOP_TIMEOUT:-10}s, killing the box" >&2
			tail -n 5 "$state/console.log" 2>/dev/null | sed 's/^/  | /' >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi

	# script and unshare end once the box's init is gone.
	if [[ -n $spid ]] && [[ $(cat "/proc/$spid/comm" 2>/dev/null) == script ]]; then
		if ! wait_gone "$spid" 3000; then
			echo "sdbox: warning: script (pid $spid) did not exit, killing it" >&2
			kill -KILL "$spid" 2>/dev/null || true
		fi
	fi

	# Nothing of the namespace may remain; whatever does gets SIGKILL.
	if [[ -n $ino ]]; then
		deadline=$(($(now_ms) + 3000))
		while [[ -n $(pidns_members "$ino") ]] && (($(now_ms) < deadline)); do
			wake_outside_parents "$ino" ""
			sleep 0.02
		done
		for p in $(pidns_members "$ino"); do
			echo "sdbox: warning: killing leftover process $p ($(cat "/proc/$p/comm" 2>/dev/null))" >&2
			kill -KILL "$p" 2>/dev/null || true
		done
		deadline=$(($(now_ms) + 2000))
		while [[ -n $(pidns_members "$ino") ]] && (($(now_ms) < deadline)); do
			sleep 0.02
		done
		if [[ -n $(pidns_members "$ino") ]]; then
			echo "sdbox: error: processes of the box remain: $(pidns_members "$ino" | tr '\n' ' ')" >&2
			rc=1
		fi
	fi

	# The cgroup tree systemd built under ours, deepest first.
	if [[ -n $cg && -d $cg ]]; then
		deadline=$(($(now_ms) + 3000))
		while :; do
			find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
			[[ -d $cg ]] || break
			if (($(now_ms) >= deadline)); then
				echo "sdbox: error: cannot remove cgroup $cg" >&2
				rc=1
				break
			fi
			sleep 0.02
		done
	fi

	if [[ -d $state/root ]] && ! mountpoint -q "$state/root"; then
		rmdir "$state/root" 2>/dev/null || true
	fi
	if ((rc == 0)); then
		rm -f "$state/pid" "$state/pidns" "$state/script.pid" "$state/cgroup"
	fi
	if [[ -n $ino ]]; then
		echo "$(($(now_ms) - t0))" >"$state/stop-ms"
	fi
	return $rc
}

# --- Inside the new namespaces -----------------------------------------------

# PID 1 of the new pid namespace, before systemd: builds the box's root under
# STATE_DIR/root, pivots into it, then becomes systemd.
stage1() {
	local state=$1 cg=$2 name=$3 units=$4
	shift 4
	local nr=$state/root d

	# Refuse to go on anywhere but in fresh namespaces with private mounts:
	# what follows must never touch the host's mounts.
	[[ $$ == 1 ]] || die "stage1 is not PID 1 of a new pid namespace"
	[[ $(findmnt -n -o PROPAGATION /) == private ]] || die "/ is not a private mount"

	echo 0 >"$cg/cgroup.procs" || die "cannot join cgroup $cg"

	# mount(8) would create /run/mount on the host for its utab: until the
	# pivot, point it where nothing can be created (this namespace's proc).
	export LIBMOUNT_UTAB=/proc/sdbox-no-utab/utab

	# The root: the host's root filesystem alone (no submounts), read-only.
	mount --bind / "$nr"
	mount -o remount,bind,ro "$nr"

	# /etc and /var: overlays whose writes go to a tmpfs, detached once the
	# overlays hold it.
	mount -t tmpfs -o mode=0700 sdbox-layers "$nr/run"
	for d in etc var; do
		mkdir "$nr/run/$d" "$nr/run/$d/upper" "$nr/run/$d/work"
		mount -t overlay -o "lowerdir=/$d,upperdir=$nr/run/$d/upper,workdir=$nr/run/$d/work" \
			"sdbox-$d" "$nr/$d"
	done
	umount -l "$nr/run"

	mount -t tmpfs -o mode=0755,nosuid,nodev sdbox-run "$nr/run"
	mount -t tmpfs -o mode=1777,nosuid,nodev sdbox-tmp "$nr/tmp"
	mount -t tmpfs -o mode=1777,nosuid,nodev sdbox-vartmp "$nr/var/tmp"

	# A small /dev; the pty of script is the console.
	mount -t tmpfs -o mode=0755,nosuid,size=1m sdbox-dev "$nr/dev"
	local node major minor
	for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
		IFS=: read -r d major minor <<<"$node"
		mknod -m 0666 "$nr/dev/$d" c "$major" "$minor" 2>/dev/null || {
			touch "$nr/dev/$d"
			mount --bind "/dev/$d" "$nr/dev/$d"
		}
	done
	touch "$nr/dev/console"
	mount --bind "$(readlink /proc/self/fd/0)" "$nr/dev/console"
	mkdir "$nr/dev/pts" "$nr/dev/shm" "$nr/dev/mqueue"
	mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts "$nr/dev/pts"
	ln -s pts/ptmx "$nr/dev/ptmx"
	mount -t tmpfs -o mode=1777,nosuid,nodev sdbox-shm "$nr/dev/shm"
	mount -t mqueue -o nosuid,nodev,noexec mqueue "$nr/dev/mqueue"
	ln -s /proc/self/fd "$nr/dev/fd"
	ln -s /proc/self/fd/0 "$nr/dev/stdin"
	ln -s /proc/self/fd/1 "$nr/dev/stdout"
	ln -s /proc/self/fd/2 "$nr/dev/stderr"

	# Fresh proc of the new pid namespace; nothing global writable in it.
	mount -t proc -o nosuid,nodev,noexec proc "$nr/proc"
	for d in sys sysrq-trigger; do
		[[ -e $nr/proc/$d ]] || continue
		mount --bind "$nr/proc/$d" "$nr/proc/$d"
		mount -o remount,bind,ro "$nr/proc/$d"
	done
	mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$nr/sys"

	# A machine of its own.
	local id
	id=$(tr -d - </proc/sys/kernel/random/uuid)
	echo "$id" >"$nr/etc/machine-id"
	if [[ -d $nr/var/lib/dbus ]]; then
		rm -f "$nr/var/lib/dbus/machine-id"
		echo "$id" >"$nr/var/lib/dbus/machine-id"
	fi
	echo sdbox >"$nr/etc/hostname"

	# The test's folders at their host paths, parents before children.
	# Mount points missing on the read-only root cannot be created: such a
	# folder must live under /tmp, /var/tmp, /run or an existing path.
	local spec path mode
	while IFS= read -r spec; do
		mode=${spec%% *}
		path=${spec#* }
		mkdir -p "$nr$path" 2>/dev/null || die "cannot bind $path: no mount point in the box"
		mount --bind "$path" "$nr$path"
		if [[ $mode == ro ]]; then
			mount -o remount,bind,ro "$nr$path"
		fi
	done < <({
		[[ $# -eq 0 ]] || printf 'rw %s\n' "$@"
		printf 'ro %s\n' "$state" "$units"
	} | LC_ALL=C sort -t' ' -k2 -u)

	# Into the new root; everything inherited from the host goes with the
	# old one.
	mkdir "$nr/tmp/.sdbox-oldroot"
	cd "$nr"
	pivot_root . tmp/.sdbox-oldroot
	cd /
	umount -l /tmp/.sdbox-oldroot
	rmdir /tmp/.sdbox-oldroot
	unset LIBMOUNT_UTAB

	local fs
	for d in /run /tmp /var/tmp; do
		fs=$(findmnt -n -o FSTYPE --mountpoint "$d")
		[[ $fs == tmpfs ]] || die "$d is not a fresh tmpfs, not starting systemd"
	done

	# Stage 2: a cgroup namespace rooted at our cgroup, cgroup2 mounted
	# there, then systemd with a clean environment and fewer capabilities.
	exec unshare --cgroup -- /bin/sh -c \
		'mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup && exec "$@"' sh \
		env -i container="$name" \
		SYSTEMD_UNIT_PATH="$units:$state/whitelist:/run/systemd/system:/run/systemd/transient" \
		SYSTEMD_GENERATOR_PATH="$state/empty" \
		SYSTEMD_ENVIRONMENT_GENERATOR_PATH="$state/empty" \
		SYSTEMD_COLORS=0 \
		setpriv --bounding-set="$SDBOX_DROP_CAPS" \
		/lib/systemd/systemd --unit=sdbox.target
}

usage() {
	sed -n '7,11p' "$SDBOX_SH" | sed 's/^# \{0,3\}//' >&2
	exit 2
}

cmd=${1:-}
[[ $# -gt 0 ]] && shift
case $cmd in
start) cmd_start "$@" ;;
exec) cmd_exec "$@" ;;
bus) cmd_bus "$@" ;;
pid) cmd_pid "$@" ;;
stop) cmd_stop "$@" ;;
__stage1) stage1 "$@" ;;
*) usage ;;
esac
