#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# QEMU end to end, run inside the test VM: real QEMU (qemu-system-x86_64 10.0
# from bookworm-backports, from the host root) drives the mtty mediated device
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
#   (a) and (b) run once per VFIO backend of MDEV_E2E_BACKENDS (default
#       "legacy iommufd"): legacy is the group/container path
#       (/dev/vfio/<group>, /dev/vfio/vfio); iommufd is QEMU's iommufd
#       backend (-object iommufd,id=iommufd0 -device vfio-pci,...,
#       iommufd=iommufd0: /dev/iommu and the device's cdev
#       /dev/vfio/devices/vfioN).  During (b) the files QEMU holds open are
#       checked to be those of the backend, and only those;
#   (c) unless MDEV_E2E_MIGRATE=0: live migration.  The nested guest runs
#       its port test in rounds (MTTY_E2E_ROUNDS) in a QEMU with the mdev
#       (enable-migration=on); a second QEMU waits with another mdev of the
#       same type (-incoming unix:...); after the guest's second round QMP
#       "migrate" moves it.  Checks: the migration completes (QEMU's downtime
#       and the device's bytes are printed), the guest passed rounds on the
#       source, keeps passing on the destination until its END, and each
#       port's interrupt count since boot keeps growing across the move (the
#       guest keeps its ports open between rounds; MDEV_E2E_APPEND=
#       MTTY_E2E_REOPEN=1 closes and reopens them every round, which has
#       shown a QEMU interrupt storm after the move, see the testing guide);
# then removes the mdevs (QEMU must have closed them) and unloads.
# With --dma it runs (c) with the mdma DMA engine instead (MDEV_E2E_CORES,
# default $MDEV_CORE), once per backend of MDEV_E2E_BACKENDS (over iommufd
# QEMU's only dirty tracking is the device's): the nested /init drives mdma from user space (BAR0
# through sysfs, guest physical addresses from pagemap), and each round
# first checks the pages the engine wrote in the previous round: the CPU
# never writes them, so after the move only the device's DMA logging can
# have told QEMU they changed.
# With --cross it runs only the cross-implementation migration: the guest
# starts on the C mtty over the C core, is migrated to a file, the modules
# are swapped (the two mtty modules cannot be loaded together), and it
# resumes on the Rust mtty over the Rust core, with the checks of (c).
# With --display it runs the display end to end on each core of
# MDEV_E2E_CORES with the mdpy module MDEV_DISPLAY_MODULE (default mdpy_rs,
# the Rust mdpy): an mdpy-vga mdev in a QEMU with -device vfio-pci,...,
# display=on and -display none; the nested guest's mdpy-fb driver gives
# /dev/fb0, /init (MDPY_E2E=1) draws a picture whose every pixel is known
# and prints DRAWN; QMP "screendump" takes what QEMU shows (the region
# display plane: VFIO_DEVICE_QUERY_GFX_PLANE, then the framebuffer through
# the region's mmap), every pixel of the PPM is checked, and the picture is
# kept as a PNG, $MDEV_RS_LOGDIR/mdpy-screendump-<core>.png (make demo
# copies it to build/demo/); the guest then reads its picture back and ends.
# MDEV_E2E_APPEND=MDPY_E2E_CORRUPT=1 makes the guest draw another picture:
# the pixel check must fail.
# Prints TAP
# and "RESULT: pass=N fail=N skip=N"; exits 0 only if nothing failed.
#
#   vm-run.sh --kernel build/obj-default --timeout 900 [--summary] -- \
#       /work/main/scripts/guest/qemu-e2e.sh
#
# Environment (vm-run.sh forwards MDEV_* only):
#   MTTY_MODULE / MDEV_MTTY_MODULE   the mtty module (default mtty; mtty_rs)
#   MDEV_E2E_CORES     cores to run on, one after the other (default $MDEV_CORE)
#   MDEV_E2E_BACKENDS  VFIO backends of (a) and (b) (default "legacy iommufd")
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
#   MDEV_E2E_MIGRATE=0    leave (c) out
#   MDEV_E2E_MIG_ROUNDS   rounds of the migrated guest (30), 500 ms apart
# The nested console goes to $MDEV_RS_LOGDIR/nested-<core>-<time>.log.

set -u
. "$(dirname "$0")/lib.sh"

mode=mtty
case "${1:-}" in
--cross) mode=cross; shift ;;
--dma) mode=dma; shift ;;
--display) mode=display; shift ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
MTTY_MODULE=${MTTY_MODULE:-${MDEV_MTTY_MODULE:-mtty}}
read -ra cores <<<"${MDEV_E2E_CORES:-$MDEV_CORE}"
read -ra backends <<<"${MDEV_E2E_BACKENDS-legacy iommufd}"
[ ${#backends[@]} -gt 0 ] || { echo "qemu-e2e: MDEV_E2E_BACKENDS is empty (legacy, iommufd)" >&2; exit 2; }
for b in "${backends[@]}"; do
	case "$b" in legacy | iommufd) ;; *) echo "qemu-e2e: unknown backend $b in MDEV_E2E_BACKENDS (legacy, iommufd)" >&2; exit 2 ;; esac
done
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

# Whether (c) runs: not with MDEV_E2E_FAST_ONLY=1 or MDEV_E2E_MIGRATE=0.
mig_wanted() {
	[ "${MDEV_E2E_FAST_ONLY:-0}" != 1 ] && [ "${MDEV_E2E_MIGRATE:-1}" != 0 ]
}

# What each core run checks, for the TAP plan.
MIG_CHECKS=4
tests_per_core() {
	local t=3 # load, create, remove
	# per backend: (a); (b): the ports, the boot, QEMU's open files
	t=$((t + ${#backends[@]}))
	[ "${MDEV_E2E_FAST_ONLY:-0}" = 1 ] || t=$((t + ${#backends[@]} * (NPORTS + 2)))
	mig_wanted && t=$((t + 2 + MIG_CHECKS)) # create, remove the destination's mdev
	echo $t
}

device_args() { # device_args <mdev> [backend]: the vfio-pci device, unless MDEV_E2E_NO_DEVICE=1
	[ "${MDEV_E2E_NO_DEVICE:-0}" = 1 ] && return
	if [ "${2:-legacy}" = iommufd ]; then
		echo "-object iommufd,id=iommufd0 -device vfio-pci,sysfsdev=$1,iommufd=iommufd0"
	else
		echo "-device vfio-pci,sysfsdev=$1"
	fi
}

# backend_files <mdev> <backend> <file with QEMU's open files>: they are
# those of the backend and not those of the other one.  Prints why not.
backend_files() {
	local group cdev
	group=/dev/vfio/$(basename "$(readlink "$1/iommu_group")")
	cdev=/dev/vfio/devices/$(basename "$(ls -d "$1"/vfio-dev/vfio* 2>/dev/null | head -n1)")
	if [ "$2" = iommufd ]; then
		grep -qx /dev/iommu "$3" || { echo "no /dev/iommu"; return 1; }
		[[ $cdev == */vfio[0-9]* ]] && grep -qx "$cdev" "$3" || { echo "no $cdev"; return 1; }
		! grep -qE '^/dev/vfio/([0-9]+|vfio)$' "$3" || { echo "a group or /dev/vfio/vfio open too"; return 1; }
	else
		[[ $group == /dev/vfio/[0-9]* ]] && grep -qx "$group" "$3" || { echo "no $group"; return 1; }
		grep -qx /dev/vfio/vfio "$3" || { echo "no /dev/vfio/vfio"; return 1; }
		! grep -qE '^/dev/iommu$|^/dev/vfio/devices/' "$3" || { echo "/dev/iommu or a VFIO cdev open too"; return 1; }
	fi
}

# (a) QEMU realizes the device: the monitor's "info pci" lists 4348:3253 as
# a serial port (class 0700) with one I/O BAR per port and INTA.  Stopped
# before the firmware ran (-S), QEMU 10 shows the BARs as "not mapped"
# (7.2 showed them at address 0).
bar_re='(at 0x[0-9a-f]+ \[0x[0-9a-f]+\]|\(not mapped\))$'

fast_check() { # fast_check <mdev sysfs path> <backend>
	local out rc t0 t1 dev
	t0=$(date +%s.%N)
	# shellcheck disable=SC2046
	out=$(printf 'info pci\nquit\n' | timeout -k 5 120 "$QEMU" -S -nodefaults \
		-display none -machine pc -accel tcg -m 64 \
		$(device_args "$1" "$2") -monitor stdio 2>&1)
	rc=$?
	t1=$(date +%s.%N)
	out=$(tr -d '\r' <<<"$out")
	# the device's block: from its "Bus" line to its 'id ""' line
	dev=$(awk '/^  Bus /{ blk = "" } { blk = blk $0 "\n" }
		/^      id / && blk ~ /PCI device 4348:3253/ { printf "%s", blk; exit }' <<<"$out")
	{
		echo "\$ $QEMU -S -nodefaults -display none -machine pc -accel tcg -m 64 $(device_args "$1" "$2") -monitor stdio  <<< 'info pci'  (exit $rc, $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f s", b - a }'))"
		grep -vE '^\(qemu\)|^QEMU .* monitor' <<<"$out"
	} | diag
	[ "$rc" = 0 ] &&
		grep -qE '^    Serial port: PCI device 4348:3253$' <<<"$dev" &&
		grep -qE "^      BAR0: I/O $bar_re" <<<"$dev" &&
		grep -qE "^      BAR1: I/O $bar_re" <<<"$dev" &&
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

# The nested guest's QEMU, in (b) and (c): TCG, the kernel and initramfs of
# nested-build.sh, its console on stdout.
nested_qemu=(-accel tcg,tb-size=64 -machine pc -cpu qemu64 -m "$mem"
	-nodefaults -display none -no-reboot
	-chardev stdio,id=con,signal=off -serial chardev:con
	-kernel "$kernel" -initrd "$initrd")
nested_append="console=ttyS0 panic=-1 quiet lpj=1000000 no_timer_check tsc=unstable"

# (b) The nested boot; sets the globals boot_log, boot_secs, and writes the
# files QEMU holds open (read once the guest printed its first line: QEMU
# opened the device before the guest ran) to $tmp/qemu.fds.
nested_boot() { # nested_boot <mdev sysfs path> <core> <backend>
	local t0 now end_seen=0 spid f
	boot_log=$logdir/nested-$2-$3-$(date +%Y%m%d-%H%M%S).log
	rm -f "$tmp/con" "$tmp/qemu.fds"
	mkfifo "$tmp/con"
	: >"$boot_log"
	t0=${EPOCHREALTIME/./}
	stamp "$t0" <"$tmp/con" >"$boot_log" &
	spid=$!
	# shellcheck disable=SC2046
	"$QEMU" "${nested_qemu[@]}" \
		-append "$nested_append MTTY_E2E_PORTS=$NPORTS ${MDEV_E2E_APPEND:-}" \
		$(device_args "$1" "$3") "${extra_qemu[@]}" \
		</dev/null >"$tmp/con" 2>"$tmp/qemu.err" &
	qpid=$!
	while :; do
		if [ ! -e "$tmp/qemu.fds" ] && [ -s "$boot_log" ]; then
			for f in /proc/"$qpid"/fd/*; do readlink "$f"; done >"$tmp/qemu.fds" 2>/dev/null
		fi
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

# (c) Live migration.  The nested QEMU of (b), with rounds, a QMP socket and
# the device's migration on; started in the background, its console stamped
# into <log>.  Sets mig_qpid and mig_spid.
mig_rounds=${MDEV_E2E_MIG_ROUNDS:-30}
mig_backend=legacy # the VFIO backend of the migrating QEMUs (--dma: each of MDEV_E2E_BACKENDS)
# what the guest runs and prints: mtty rounds, or (--dma) mdma rounds
tag=MTTY-E2E
mig_append="MTTY_E2E_PORTS=$NPORTS MTTY_E2E_ROUNDS=$mig_rounds MTTY_E2E_PAUSE_MS=${MDEV_E2E_MIG_PAUSE:-500}"
start_nested() { # start_nested <log> <qmp socket> <mdev sysfs path> [qemu args...]
	local log=$1 qmp=$2 mdev=$3 fifo
	shift 3
	fifo=$tmp/con.$RANDOM
	mkfifo "$fifo"
	: >"$log"
	stamp "${EPOCHREALTIME/./}" <"$fifo" >"$log" &
	mig_spid=$!
	local be=() dev="vfio-pci,sysfsdev=$mdev,enable-migration=on"
	if [ "$mig_backend" = iommufd ]; then
		be=(-object iommufd,id=iommufd0)
		dev+=",iommufd=iommufd0"
	fi
	"$QEMU" "${nested_qemu[@]}" -append "$nested_append $mig_append ${MDEV_E2E_APPEND:-}" \
		"${be[@]}" -device "$dev" \
		-qmp "unix:$qmp,server=on,wait=off" "${extra_qemu[@]}" "$@" \
		</dev/null >"$fifo" 2>"$log.err" &
	mig_qpid=$!
}

wait_log() { # wait_log <log> <ERE> <seconds> <pid>: the line appears (while pid lives)
	local i
	for i in $(seq $(($3 * 4))); do
		sed 's/^[^|]*| //' "$1" | grep -qE "$2" && return 0
		kill -0 "$4" 2>/dev/null || return 1
		sleep 0.25
	done
	return 1
}

end_qemu() { # end_qemu <qemu pid> <stamper pid>: waits up to 10 s, then kills
	local i
	for i in $(seq 40); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.25
	done
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	wait "$2" 2>/dev/null
}

unstamp() { sed 's/^[^|]*| //' "$1"; }
# The port lines of a console log, unstamped.
port_lines() { sed 's/^[^|]*| //' "$1" | grep -E '^MTTY-E2E: (PASS|FAIL) port='; }

# migrate <src mdev> <dst mdev> <label> <uri> [between]: the guest starts on
# <src>, moves to <dst> through <uri> (unix:... live, or file:...); the
# command <between> runs after the source QEMU quit and before the
# destination starts (for file: only, which may swap modules there; it must
# print the destination mdev's path on its last line).  Four checks.
migrate() {
	local src=$1 dst=$2 label=$3 uri=$4 between=${5:-} slog dlog info rc p
	local spid sspid dpid= dspid= last first ok_irq=0 why=
	slog=$logdir/nested-mig-src-$(date +%Y%m%d-%H%M%S).log
	dlog=${slog/-src-/-dst-}
	start_nested "$slog" "$tmp/src.qmp" "$src"
	spid=$mig_qpid sspid=$mig_spid
	if [[ $uri == unix:* ]]; then
		start_nested "$dlog" "$tmp/dst.qmp" "$dst" -incoming "$uri"
		dpid=$mig_qpid dspid=$mig_spid
	fi
	rc=1
	if wait_log "$slog" "^$tag: ROUND 2/" "$boot_timeout" "$spid"; then
		info=$(python3 "$here/qmp.py" "$tmp/src.qmp" migrate "{\"uri\": \"$uri\"}" 2>&1 &&
			python3 "$here/qmp.py" "$tmp/src.qmp" --wait-migration 300 2>&1)
		rc=$?
	else
		info="the guest did not reach its second round on the source"
	fi
	python3 "$here/qmp.py" "$tmp/src.qmp" quit >/dev/null 2>&1
	end_qemu "$spid" "$sspid"
	echo "query-migrate: $info" | diag
	if [ -n "$between" ]; then
		dst=$($between | tail -n1)
		start_nested "$dlog" "$tmp/dst.qmp" "$dst" -incoming "$uri"
		dpid=$mig_qpid dspid=$mig_spid
	fi
	local downtime total vfio
	downtime=$(sed -nE 's/.*"downtime": ([0-9]+).*/\1/p' <<<"$info")
	total=$(sed -nE 's/.*"total-time": ([0-9]+).*/\1/p' <<<"$info")
	vfio=$(sed -nE 's/.*"vfio": \{"transferred": ([0-9]+).*/\1/p' <<<"$info")
	check $rc "migration $uri completed: downtime ${downtime:-?} ms, total ${total:-?} ms, device state ${vfio:-?} bytes [$label]"
	[ "$rc" = 0 ] && echo "MIGRATION-BENCH: $label downtime_ms=${downtime:-?} total_ms=${total:-?} vfio_bytes=${vfio:-?}"

	# a destination that got no guest waits forever: only wait if it did
	[ "$rc" = 0 ] && wait_log "$dlog" "^$tag: END" "$boot_timeout" "$dpid"
	end_qemu "$dpid" "$dspid"
	sed 's/^/src qemu: /' "$slog.err" | diag
	sed 's/^/dst qemu: /' "$dlog.err" | diag
	echo "# source console ($slog):"; diag <"$slog"
	echo "# destination console ($dlog):"; diag <"$dlog"

	local end
	if [ "$tag" = MDMA-E2E ]; then
		[ "$(unstamp "$slog" | grep -c '^MDMA-E2E: ROUND [0-9]*/[0-9]* ok')" -ge 2 ] &&
			! unstamp "$slog" | grep -q '^MDMA-E2E: FAIL'
		check $? "the guest's DMA rounds passed on the source before the switch [$label]"
	else
		[ "$(port_lines "$slog" | grep -c '^MTTY-E2E: PASS')" -ge "$NPORTS" ] &&
			! port_lines "$slog" | grep -q FAIL
		check $? "the guest passed rounds on the source before the switch [$label]"
	fi

	end=$(unstamp "$dlog" | grep -E "^$tag: END" | tail -n1)
	if [ "$tag" = MDMA-E2E ]; then
		[ "$(unstamp "$dlog" | grep -c '^MDMA-E2E: ROUND [0-9]*/[0-9]* ok')" -ge 1 ]
	else
		[ "$(port_lines "$dlog" | grep -c '^MTTY-E2E: PASS')" -ge "$NPORTS" ]
	fi &&
		! unstamp "$dlog" | grep -q "^$tag: FAIL" &&
		[[ $end == *" fail=0 "* ]] &&
		! grep -qE 'BUG:|WARNING:|Oops|Kernel panic|Call Trace:' "$slog" "$dlog"
	check $? "the guest keeps running on the destination until its END: ${end:-no END line} [$label]"

	if [ "$tag" = MDMA-E2E ]; then
		first=$(unstamp "$dlog" | grep -E '^MDMA-E2E: (ROUND|FAIL)' | head -n1)
		[[ $first == "MDMA-E2E: ROUND "*" ok: checked 80 pages"* ]]
		check $? "the destination's first round found every page the engine wrote before the move (dirty tracking): ${first:-none} [$label]"
		return
	fi

	for p in $(port_lines "$slog" | sed -nE 's/.*PASS port=([^ ]+).*/\1/p' | sort -u); do
		last=$(port_lines "$slog" | sed -nE "s/.*PASS port=$p .* total=([0-9]+).*/\1/p" | tail -n1)
		first=$(port_lines "$dlog" | sed -nE "s/.*PASS port=$p .* total=([0-9]+).*/\1/p" | head -n1)
		if [ -n "$last" ] && [ -n "$first" ] && [ "$first" -gt "$last" ]; then
			ok_irq=$((ok_irq + 1))
		fi
		why="$why $p: ${last:-?} -> ${first:-?};"
	done
	[ "$ok_irq" = "$NPORTS" ]
	check $? "interrupt counts continue across the switch:$why [$label]"
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

	local b why
	for b in "${backends[@]}"; do
		what="QEMU realizes vfio-pci,sysfsdev=<mdev> ($b backend): info pci shows 4348:3253, serial port, 2 I/O BARs, INTA [core=$core]"
		fast_check "$dev" "$b"
		check $? "$what"

		[ "${MDEV_E2E_FAST_ONLY:-0}" != 1 ] || continue
		what="nested guest boots with the mdev ($b backend)"
		if [ ! -f "$kernel" ] || [ ! -f "$initrd" ]; then
			for i in $(seq $NPORTS); do
				skipped "nested guest: port $i echoes the pattern [core=$core $b]" "no $kernel or $initrd (run scripts/nested-build.sh on the host)"
			done
			skipped "$what [core=$core]" "no nested kernel/initramfs (scripts/nested-build.sh)"
			skipped "QEMU holds the $b backend's files [core=$core]" "no nested kernel/initramfs (scripts/nested-build.sh)"
			continue
		fi
		nested_boot "$dev" "$core" "$b"
		rc=$?
		echo "# nested console: $boot_log"
		mapfile -t lines < <(console | grep -E '^MTTY-E2E: (PASS|FAIL) port=')
		for i in $(seq $NPORTS); do
			line=${lines[$((i - 1))]:-}
			if [[ $line == "MTTY-E2E: PASS "* ]]; then
				ok "nested guest: ${line#MTTY-E2E: } [core=$core $b]"
			else
				notok "nested guest: port $i: ${line:-no PASS/FAIL line for it} [core=$core $b]"
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
		echo "# files QEMU held open ($b backend):"
		grep -E '^/dev/' "$tmp/qemu.fds" 2>/dev/null | sort | uniq -c | diag
		why=$(backend_files "$dev" "$b" "$tmp/qemu.fds")
		check $? "QEMU held the $b backend's files open, not the other backend's${why:+: $why} [core=$core]"
	done

	if mig_wanted; then
		local uuid2 dev2
		uuid2=$(cat /proc/sys/kernel/random/uuid)
		dev2=/sys/bus/mdev/devices/$uuid2
		echo "$uuid2" >"$PARENT/mdev_supported_types/$TYPE/create" && [ -d "$dev2" ]
		check $? "create the destination's $TYPE mdev $uuid2 [core=$core]"
		if [ ! -f "$kernel" ] || [ ! -f "$initrd" ]; then
			for i in $(seq $MIG_CHECKS); do
				skipped "live migration [core=$core]" "no nested kernel/initramfs (scripts/nested-build.sh)"
			done
		else
			migrate "$dev" "$dev2" "core=$core mtty=$MTTY_MODULE" "unix:$tmp/mig.sock"
		fi
		echo 1 >"$dev2/remove" && [ ! -e "$dev2" ]
		check $? "remove the destination's mdev after QEMU closed it [core=$core]"
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

# --dma: the mdma engine, migrated live on each core.
if [ "$mode" = dma ]; then
	tag=MDMA-E2E
	mig_append="MDMA_E2E_ROUNDS=$((mig_rounds * 10)) MDMA_E2E_PAUSE_MS=50"
	TYPE=mdma-dma
	PARENT=/sys/class/mdev_bus/mdma
	echo "TAP version 13"
	echo "1..$(( ${#cores[@]} * (1 + ${#backends[@]} * (MIG_CHECKS + 2)) ))"
	echo "# $("$QEMU" --version | head -n1)"
	for core in "${cores[@]}"; do
		MDEV_CORE=$core MDEV_SAMPLES=mdma
		out=$(mdev_load 2>&1)
		check $? "load core=$core mdma"
		diag <<<"$out"
		# over iommufd QEMU has no container that reports pinned pages
		# dirty: the device's DMA logging is all it has
		for mig_backend in "${backends[@]}"; do
			u1=$(cat /proc/sys/kernel/random/uuid) u2=$(cat /proc/sys/kernel/random/uuid)
			echo "$u1" >"$PARENT/mdev_supported_types/$TYPE/create" &&
				echo "$u2" >"$PARENT/mdev_supported_types/$TYPE/create"
			check $? "create two $TYPE mdevs [core=$core $mig_backend]"
			migrate "/sys/bus/mdev/devices/$u1" "/sys/bus/mdev/devices/$u2" "core=$core mdma $mig_backend" "unix:$tmp/mig.sock"
			echo 1 >"/sys/bus/mdev/devices/$u1/remove" && echo 1 >"/sys/bus/mdev/devices/$u2/remove"
			check $? "remove both mdevs after QEMU closed them [core=$core $mig_backend]"
		done
		mdev_unload
		mdev_all_unloaded | diag
	done
	echo "RESULT: pass=$pass fail=$fail skip=$skip"
	[ "$fail" = 0 ]
	exit
fi

# --display: the mdpy display, shown by QEMU, on each core.
DISPLAY_CHECKS=8
display_core() { # display_core <core>
	local core=$1 mod=${MDEV_DISPLAY_MODULE:-mdpy_rs} uuid dev log qmp qp sp i out
	local shot=$tmp/shot.ppm png=$logdir/mdpy-screendump-$core.png
	MDEV_CORE=$core MDEV_SAMPLES=$mod
	out=$(mdev_load 2>&1)
	check $? "load core=$core $mod"
	diag <<<"$out"
	uuid=$(cat /proc/sys/kernel/random/uuid)
	dev=/sys/bus/mdev/devices/$uuid
	echo "$uuid" >/sys/class/mdev_bus/mdpy/mdev_supported_types/mdpy-vga/create && [ -d "$dev" ]
	check $? "create an mdpy-vga mdev [core=$core]"
	if [ ! -f "$kernel" ] || [ ! -f "$initrd" ]; then
		for i in $(seq $((DISPLAY_CHECKS - 3))); do
			skipped "display end to end [core=$core]" "no nested kernel/initramfs (scripts/nested-build.sh)"
		done
	else
		log=$logdir/nested-display-$core-$(date +%Y%m%d-%H%M%S).log
		qmp=$tmp/display.qmp
		rm -f "$qmp" "$shot" "$png"
		mkfifo "$tmp/dcon"
		: >"$log"
		stamp "${EPOCHREALTIME/./}" <"$tmp/dcon" >"$log" &
		sp=$!
		"$QEMU" "${nested_qemu[@]}" \
			-append "$nested_append MDPY_E2E=1 MDPY_E2E_HOLD=${MDEV_E2E_DISPLAY_HOLD:-10} ${MDEV_E2E_APPEND:-}" \
			-device "vfio-pci,sysfsdev=$dev,display=on" \
			-qmp "unix:$qmp,server=on,wait=off" "${extra_qemu[@]}" \
			</dev/null >"$tmp/dcon" 2>"$log.err" &
		qp=$!
		qpid=$qp
		wait_log "$log" '^MDPY-E2E: (DRAWN|FAIL)' "$boot_timeout" "$qp"
		unstamp "$log" | grep -q '^MDPY-E2E: DRAWN 640x480'
		check $? "the nested guest's mdpy-fb draws on the mdev: $(unstamp "$log" | grep -E '^MDPY-E2E: (FB|DRAWN|FAIL)' | tr '\n' ' ') [core=$core]"
		out=$(python3 "$here/qmp.py" "$qmp" screendump "{\"filename\": \"$shot\"}" 2>&1) &&
			[ -s "$shot" ]
		check $? "QMP screendump of the vfio display (ppm) [core=$core]"
		diag <<<"$out"
		out=$(python3 - "$shot" "${MDEV_E2E_APPEND:-}" <<'PY' 2>&1
import sys

def pixel(x, y, w, h, corrupt):
    r, g = x * 255 // (w - 1), y * 255 // (h - 1)
    b = 0xff if (x // 80 + y // 60) & 1 else 0
    if corrupt:
        b ^= 0xff
    return (r, g, b)

data = open(sys.argv[1], "rb").read()
fields, pos = [], 0
while len(fields) < 4:
    while data[pos:pos + 1].isspace():
        pos += 1
    if data[pos:pos + 1] == b"#":
        pos = data.index(b"\n", pos)
        continue
    end = pos
    while not data[end:end + 1].isspace():
        end += 1
    fields.append(data[pos:end].decode())
    pos = end
pos += 1
magic, w, h, maxval = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
assert magic == "P6" and maxval == 255, fields
px = data[pos:]
assert len(px) >= w * h * 3, (len(px), w, h)
bad = 0
first = None
for y in range(h):
    for x in range(w):
        i = (y * w + x) * 3
        got = tuple(px[i:i + 3])
        want = pixel(x, y, w, h, False)
        if got != want:
            bad += 1
            if first is None:
                first = (x, y, got, want)
print(f"{w}x{h}, {w * h - bad} of {w * h} pixels as drawn" +
      (f"; first difference at {first[:2]}: {first[2]} != {first[3]}" if first else ""))
sys.exit(0 if (w, h) == (640, 480) and bad == 0 else 1)
PY
)
		check $? "every pixel of the screendump is the guest's picture: $out [core=$core]"
		out=$(python3 "$here/qmp.py" "$qmp" screendump "{\"filename\": \"$png\", \"format\": \"png\"}" 2>&1) &&
			[ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
		check $? "the picture as a PNG a person can open: $png [core=$core]"
		diag <<<"$out"
		wait_log "$log" '^MDPY-E2E: END' "$boot_timeout" "$qp"
		out=$(unstamp "$log" | grep -E '^MDPY-E2E: END' | tail -n1)
		unstamp "$log" | grep -q '^MDPY-E2E: PASS the picture reads back' &&
			[[ $out == *" fail=0 "* ]] &&
			! grep -qE 'BUG:|WARNING:|Oops|Kernel panic|Call Trace:' "$log"
		check $? "the guest reads its picture back and ends: ${out:-no END line} [core=$core]"
		end_qemu "$qp" "$sp"
		qpid=
		rm -f "$tmp/dcon"
		sed 's/^/qemu: /' "$log.err" | diag
		echo "# nested console ($log):"
		diag <"$log"
	fi
	stop_qemu
	echo 1 >"$dev/remove" && [ ! -e "$dev" ]
	check $? "remove the mdev after QEMU closed it [core=$core]"
	mdev_unload
	mdev_all_unloaded | diag
}
if [ "$mode" = display ]; then
	echo "TAP version 13"
	echo "1..$(( ${#cores[@]} * DISPLAY_CHECKS ))"
	echo "# $("$QEMU" --version | head -n1)"
	for core in "${cores[@]}"; do
		display_core "$core"
	done
	echo "RESULT: pass=$pass fail=$fail skip=$skip"
	[ "$fail" = 0 ]
	exit
fi

# --cross: C mtty on the C core -> (file) -> Rust mtty on the Rust core.
cross_swap() { # between the two QEMUs: unload the source's modules, load the destination's
	echo 1 >"$cross_src/remove"
	MDEV_CORE=mdev_c MDEV_SAMPLES=mtty mdev_unload
	MDEV_CORE=mdev MDEV_SAMPLES=mtty_rs
	mdev_load >&2 || { echo "# cannot load the Rust core and mtty_rs" >&2; echo /nonexistent; return; }
	local u
	u=$(cat /proc/sys/kernel/random/uuid)
	echo "$u" >"$PARENT/mdev_supported_types/$TYPE/create"
	echo "/sys/bus/mdev/devices/$u"
}
if [ "$mode" = cross ]; then
	echo "TAP version 13"
	echo "1..$MIG_CHECKS"
	echo "# $("$QEMU" --version | head -n1)"
	MDEV_CORE=mdev_c MDEV_SAMPLES=mtty
	mdev_load | diag
	u=$(cat /proc/sys/kernel/random/uuid)
	echo "$u" >"$PARENT/mdev_supported_types/$TYPE/create"
	cross_src=/sys/bus/mdev/devices/$u
	migrate "$cross_src" "" "C mtty on mdev_c -> Rust mtty on mdev" "file:$tmp/guest.mig" cross_swap
	for d in /sys/bus/mdev/devices/*; do
		[ -e "$d/remove" ] && echo 1 >"$d/remove"
	done
	mdev_unload_all | diag
	echo "RESULT: pass=$pass fail=$fail skip=$skip"
	[ "$fail" = 0 ]
	exit
fi

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
