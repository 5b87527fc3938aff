#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# QEMU end to end, run inside the test VM: real QEMU (Debian's
# qemu-system-x86_64 7.2, from the host root) drives the mtty mediated device
# through vfio-pci.  For each core (MDEV_E2E_CORES, default $MDEV_CORE, see
# lib.sh) it loads the core and the mtty module, creates an mtty-2 mdev, and
#   (a) starts QEMU stopped (-S) with -device vfio-pci,sysfsdev=<mdev> and
#       checks from the monitor's "info pci" that the guest sees PCI 4348:3253,
#       a serial port (class 0700) with two I/O BARs (QEMU's VFIO realize path);
#   (b) boots the nested guest built by scripts/nested-build.sh (TCG inside
#       TCG) with the device: its /init (tools/testing/selftests/vfio-mdev/
#       nested/init.c) writes a pattern to each port of the device and reads
#       it back through mtty's loop-back, interrupt driven (INTx through VFIO
#       eventfds), and prints "MTTY-E2E: PASS|FAIL ..." lines and an END line;
#       every expected port must PASS;
# then removes the mdev (QEMU must have closed it) and unloads.  Prints TAP
# and "RESULT: pass=N fail=N skip=N"; exits 0 only if nothing failed.
#
#   vm-run.sh --kernel build/obj-default --timeout 900 [--summary] -- \
#       /work/main/scripts/guest/qemu-e2e.sh
#
# Environment (vm-run.sh forwards MDEV_* only):
#   MTTY_MODULE / MDEV_MTTY_MODULE   the mtty module (default mtty; mtty_rs)
#   MDEV_E2E_CORES     cores to run on, one after the other (default $MDEV_CORE)
#   MDEV_E2E_DIR       nested-build.sh's output (default <repo>/build/nested)
#   MDEV_E2E_KERNEL    nested kernel (default <dir>/obj/vmlinux, PVH boot;
#                      <dir>/obj/arch/x86/boot/bzImage works too)
#   MDEV_E2E_TIMEOUT   seconds the nested boot may take (600)
#   MDEV_E2E_MEM       nested guest memory (96M)
#   MDEV_E2E_APPEND    more nested kernel arguments, e.g. MTTY_E2E_CORRUPT=1
#                      (init compares against a wrong pattern: must FAIL)
#   MDEV_E2E_QEMU_ARGS more QEMU arguments for (b), e.g. "-cpu max"
#   MDEV_E2E_NO_DEVICE=1  start QEMU without the vfio-pci device: (a) and (b)
#                      must FAIL (proves the checks can fail)
#   MDEV_E2E_FAST_ONLY=1  only (a)
# The nested console goes to $MDEV_RS_LOGDIR/nested-<core>-<time>.log.

set -u
. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
MTTY_MODULE=${MTTY_MODULE:-${MDEV_MTTY_MODULE:-mtty}}
read -ra cores <<<"${MDEV_E2E_CORES:-$MDEV_CORE}"
dir=${MDEV_E2E_DIR:-$repo/build/nested}
kernel=${MDEV_E2E_KERNEL:-$dir/obj/vmlinux}
initrd=$dir/initramfs.cpio
boot_timeout=${MDEV_E2E_TIMEOUT:-600}
mem=${MDEV_E2E_MEM:-96M}
logdir=${MDEV_RS_LOGDIR:-/tmp}
read -ra extra_qemu <<<"${MDEV_E2E_QEMU_ARGS:-}"
QEMU=${MDEV_E2E_QEMU:-qemu-system-x86_64}
TYPE=mtty-2
NPORTS=2
PARENT=/sys/class/mdev_bus/mtty

if [ "${MDEV_RS_VM:-}" != 1 ] && [ "${MDEV_E2E_FORCE:-}" != 1 ]; then
	echo "qemu-e2e: meant for the test VM (loads modules); MDEV_E2E_FORCE=1 to run anyway" >&2
	exit 2
fi

n=0 pass=0 fail=0 skip=0
tmp=$(mktemp -d)
qpid=

ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $*"; }
skipped() { # skipped <description> <why>
	n=$((n + 1)); skip=$((skip + 1)); echo "ok $n - $1 # SKIP $2"
}
check() { # check <status> <description>
	if [ "$1" = 0 ]; then ok "$2"; else notok "$2"; fi
}
diag() { sed 's/^/# /'; }

stop_qemu() {
	[ -n "$qpid" ] || return 0
	kill "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
	qpid=
}
cleanup() {
	stop_qemu
	rm -rf "$tmp"
}
trap cleanup EXIT

# What each core run checks, for the TAP plan.
tests_per_core() {
	local t=4 # load, create, (a), remove
	[ "${MDEV_E2E_FAST_ONLY:-0}" = 1 ] || t=$((t + NPORTS + 1))
	echo $t
}

device_args() { # the vfio-pci device, unless MDEV_E2E_NO_DEVICE=1
	[ "${MDEV_E2E_NO_DEVICE:-0}" = 1 ] && return
	echo "-device vfio-pci,sysfsdev=$1"
}

# (a) QEMU realizes the device: the monitor's "info pci" lists 4348:3253 as
# a serial port (class 0700) with one I/O BAR per port and INTA.
fast_check() { # fast_check <mdev sysfs path>
	local out rc t0 t1 dev
	t0=$(date +%s.%N)
	# shellcheck disable=SC2046
	out=$(printf 'info pci\nquit\n' | timeout -k 5 120 "$QEMU" -S -nodefaults \
		-display none -machine pc -accel tcg -m 64 \
		$(device_args "$1") -monitor stdio 2>&1)
	rc=$?
	t1=$(date +%s.%N)
	out=$(tr -d '\r' <<<"$out")
	# the device's block: from its "Bus" line to its 'id ""' line
	dev=$(awk '/^  Bus /{ blk = "" } { blk = blk $0 "\n" }
		/^      id / && blk ~ /PCI device 4348:3253/ { printf "%s", blk; exit }' <<<"$out")
	{
		echo "\$ $QEMU -S -nodefaults -display none -machine pc -accel tcg -m 64 $(device_args "$1") -monitor stdio  <<< 'info pci'  (exit $rc, $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f s", b - a }'))"
		grep -vE '^\(qemu\)|^QEMU .* monitor' <<<"$out"
	} | diag
	[ "$rc" = 0 ] &&
		grep -qE '^    Serial port: PCI device 4348:3253$' <<<"$dev" &&
		grep -qE '^      BAR0: I/O at 0x[0-9a-f]+ \[0x[0-9a-f]+\]' <<<"$dev" &&
		grep -qE '^      BAR1: I/O at 0x[0-9a-f]+ \[0x[0-9a-f]+\]' <<<"$dev" &&
		! grep -qE '^      BAR[2-5]:' <<<"$dev" &&
		grep -qE '^      IRQ [0-9]+, pin A' <<<"$dev"
}

# Copies stdin to stdout, each line prefixed with the seconds since the
# microsecond timestamp $1, as "   12.34| line".
stamp() {
	local line d t0=$1
	while IFS= read -r line; do
		d=$(( ${EPOCHREALTIME/./} - t0 ))
		printf '%5d.%02d| %s\n' $((d / 1000000)) $((d % 1000000 / 10000)) "${line%$'\r'}"
	done
}
console() { sed 's/^[^|]*| //' "$boot_log"; } # the nested console, unstamped
when() { # when <ERE>: the stamp of the first console line matching it
	sed -nE "/^[^|]*\| .*$1/{ s/^ *([0-9.]+)\|.*/\1/p; q }" "$boot_log"
}

# (b) The nested boot; sets the globals boot_log, boot_secs.
nested_boot() { # nested_boot <mdev sysfs path> <core>
	local t0 now end_seen=0 spid
	boot_log=$logdir/nested-$2-$(date +%Y%m%d-%H%M%S).log
	rm -f "$tmp/con"
	mkfifo "$tmp/con"
	: >"$boot_log"
	t0=${EPOCHREALTIME/./}
	stamp "$t0" <"$tmp/con" >"$boot_log" &
	spid=$!
	# shellcheck disable=SC2046
	"$QEMU" -accel tcg,tb-size=64 -machine pc -cpu qemu64 -m "$mem" \
		-nodefaults -display none -no-reboot \
		-chardev stdio,id=con,signal=off -serial chardev:con \
		-kernel "$kernel" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 quiet lpj=1000000 no_timer_check tsc=unstable MTTY_E2E_PORTS=$NPORTS ${MDEV_E2E_APPEND:-}" \
		$(device_args "$1") "${extra_qemu[@]}" \
		</dev/null >"$tmp/con" 2>"$tmp/qemu.err" &
	qpid=$!
	while :; do
		if grep -q '| MTTY-E2E: END' "$boot_log"; then
			end_seen=1
			break
		fi
		kill -0 "$qpid" 2>/dev/null || break
		if [ $(( (${EPOCHREALTIME/./} - t0) / 1000000 )) -ge "$boot_timeout" ]; then
			echo "# nested boot: no END line within ${boot_timeout}s (MDEV_E2E_TIMEOUT)"
			break
		fi
		sleep 0.5
	done
	# init reboots after END, and -no-reboot makes QEMU exit
	if [ $end_seen = 1 ]; then
		for _ in $(seq 40); do
			kill -0 "$qpid" 2>/dev/null || break
			sleep 0.25
		done
		kill -0 "$qpid" 2>/dev/null && echo "# QEMU still running 10 s after END: killing it"
	fi
	stop_qemu
	wait "$spid"
	now=${EPOCHREALTIME/./}
	boot_secs=$(( (now - t0) / 1000000 )).$(( (now - t0) % 1000000 / 100000 ))
	sed 's/^/qemu: /' "$tmp/qemu.err" | diag
	diag <"$boot_log"
	local banner=
	[ -n "$(when 'Linux version')" ] && banner=", kernel banner $(when 'Linux version')"
	echo "# nested boot timeline (s since QEMU started): first console line $(when '.')$banner, init runs $(when 'MTTY-E2E: INIT'), ports found $(when 'MTTY-E2E: START'), END $(when 'MTTY-E2E: END'), QEMU gone ${boot_secs}"
	return $((1 - end_seen))
}

run_core() { # run_core <core>
	local core=$1 uuid dev what i line rc splats lines
	MDEV_CORE=$core
	MDEV_SAMPLES=$MTTY_MODULE
	echo "# core=$core mtty module=$MTTY_MODULE"
	if ! mdev_load; then
		notok "load core=$core $MTTY_MODULE"
		for i in $(seq $(($(tests_per_core) - 1))); do
			notok "core=$core: not run, the core or $MTTY_MODULE did not load"
		done
		mdev_unload_all | diag
		return
	fi
	ok "load core=$core $MTTY_MODULE"

	uuid=$(cat /proc/sys/kernel/random/uuid)
	dev=/sys/bus/mdev/devices/$uuid
	if echo "$uuid" >"$PARENT/mdev_supported_types/$TYPE/create" && [ -d "$dev" ] &&
		[ -e "$dev/iommu_group" ]; then
		ok "create $TYPE mdev $uuid (iommu group $(basename "$(readlink "$dev/iommu_group")")) [core=$core]"
	else
		notok "create $TYPE mdev $uuid [core=$core]"
	fi

	what="QEMU realizes vfio-pci,sysfsdev=<mdev>: info pci shows 4348:3253, serial port, 2 I/O BARs, INTA [core=$core]"
	fast_check "$dev"
	check $? "$what"

	if [ "${MDEV_E2E_FAST_ONLY:-0}" != 1 ]; then
		what="nested guest boots with the mdev"
		if [ ! -f "$kernel" ] || [ ! -f "$initrd" ]; then
			for i in $(seq $NPORTS); do
				skipped "nested guest: port $i echoes the pattern [core=$core]" "no $kernel or $initrd (run scripts/nested-build.sh on the host)"
			done
			skipped "$what [core=$core]" "no nested kernel/initramfs (scripts/nested-build.sh)"
		else
			nested_boot "$dev" "$core"
			rc=$?
			echo "# nested console: $boot_log"
			mapfile -t lines < <(console | grep -E '^MTTY-E2E: (PASS|FAIL) port=')
			for i in $(seq $NPORTS); do
				line=${lines[$((i - 1))]:-}
				if [[ $line == "MTTY-E2E: PASS "* ]]; then
					ok "nested guest: ${line#MTTY-E2E: } [core=$core]"
				else
					notok "nested guest: port $i: ${line:-no PASS/FAIL line for it} [core=$core]"
				fi
			done
			line=$(console | grep -E '^MTTY-E2E: END' | tail -n1)
			splats=$(console | grep -nE 'BUG:|WARNING:|Oops|general protection|Kernel panic|Call Trace:' | head -n 5)
			[ -n "$splats" ] && { echo "# kernel report in the nested console:"; diag <<<"$splats"; rc=1; }
			console | grep -E '^MTTY-E2E: FAIL' | grep -v ' port=' | diag
			[ "$rc" = 0 ] && [[ $line == *" fail=0 "* ]] && ! console | grep -q '^MTTY-E2E: FAIL'
			rc=$?
			[ "$rc" = 0 ] || { echo "# test VM's dmesg, last lines:"; dmesg | tail -n 15 | diag; }
			check $rc "$what, runs init, exits: ${line:-no END line} (${boot_secs}s) [core=$core]"
		fi
	fi

	# QEMU has exited: the device must be free, and removing it must work.
	stop_qemu
	if [ -d "$dev" ]; then
		echo 1 >"$dev/remove"
		rc=$?
		[ "$rc" = 0 ] && [ ! -e "$dev" ]
		check $? "remove the mdev after QEMU closed it [core=$core]"
	else
		notok "remove the mdev after QEMU closed it: no $dev [core=$core]"
	fi
	mdev_unload
	mdev_all_unloaded | diag
}

echo "TAP version 13"
echo "1..$(( ${#cores[@]} * $(tests_per_core) ))"
if ! command -v "$QEMU" >/dev/null; then
	for _ in $(seq $(( ${#cores[@]} * $(tests_per_core) ))); do
		skipped "QEMU end to end" "no $QEMU in PATH"
	done
else
	echo "# $("$QEMU" --version | head -n1)"
	for c in "${cores[@]}"; do
		run_core "$c"
	done
fi
echo "RESULT: pass=$pass fail=$fail skip=$skip"
[ "$fail" = 0 ]
