#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the built kernel with virtme-ng (the host root over 9p, read-only,
# with tmpfs overlays), run one command inside, and bring its output and exit
# status back.  The kernel console goes to a log file that is then scanned:
# any BUG/WARNING/Oops/GPF/lockdep/KASAN/kmemleak report fails the run.
#
#   vm-run.sh --kernel <obj-dir> [options] -- <command> [args...]
#
# Options:
#   --timeout SEC    kill the VM after SEC seconds (0: no limit; default 900)
#   --logdir DIR     where console logs go (default <obj-dir>/../logs)
#   --rwdir DIR      make a host folder writable in the guest (repeatable)
#   --device SPEC    add an emulated device to the VM: QEMU's -device SPEC,
#                    e.g. edu or edu,dma_mask=0xfffffff (repeatable); the guest
#                    gets the list in MDEV_RS_VM_DEVICES
#   --summary        the command is the test runner: print "N passed, N failed"
#                    from its "RESULT:" line, counting a crash/timeout as a failure
#   --kvm / --tcg    force the accelerator (default: KVM if a probe boot works)
#
# Environment: VNG_VENV (virtme-ng install), VM_CPUS (2), VM_MEM (2G), V=1 to
# echo the kernel console while it runs.
set -uo pipefail

kernel= timeout=900 logdir= summary=0 accel=auto
rwdirs=() devices=()
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--logdir) logdir=$2; shift 2 ;;
	--rwdir) rwdirs+=("--rwdir=$2"); shift 2 ;;
	--device)
		[[ $2 =~ ^[A-Za-z0-9_.,=-]+$ ]] ||
			{ echo "vm-run: --device '$2': a QEMU device spec has no spaces or quotes" >&2; exit 2; }
		devices+=("$2"); shift 2 ;;
	--summary) summary=1; shift ;;
	--kvm) accel=kvm; shift ;;
	--tcg) accel=tcg; shift ;;
	--) shift; break ;;
	*) echo "vm-run: unknown option $1" >&2; exit 2 ;;
	esac
done
[ $# -gt 0 ] || { echo "vm-run: no command given" >&2; exit 2; }
[ -n "$kernel" ] && [ -f "$kernel/arch/x86/boot/bzImage" ] ||
	{ echo "vm-run: no built kernel in '$kernel' (run make build)" >&2; exit 2; }
kernel=$(realpath "$kernel")
logdir=${logdir:-$kernel/../logs}
mkdir -p "$logdir"
logdir=$(realpath "$logdir")
VNG_BIN=${VNG_VENV:-/opt/mdev-rs/virtme-ng-1.42}/bin
VNG=$VNG_BIN/vng
[ -x "$VNG" ] || { echo "vm-run: $VNG missing (run make setup)" >&2; exit 2; }
export PATH=$VNG_BIN:$PATH # vng runs virtme-run from PATH

# The guest sees the host root read-only, but virtme-ng puts tmpfs over
# /var/cache, /var/tmp, /var/log and parts of /var/lib: mount the build tree
# and this repository explicitly when they live there (only then, so that a
# read-only mount never hides the writable log folder inside them).
repo=$(realpath "$(dirname "$0")/..")
hidden() { case "$1" in /var/cache/* | /var/tmp/* | /var/log/* | /var/lib/*) return 0 ;; esac; return 1; }
vng_base=("$VNG" --run "$kernel" --disable-microvm --force-9p --verbose
	--cpus "${VM_CPUS:-2}" --memory "${VM_MEM:-2G}" --rwdir="$logdir")
# udev would load mdma_edu at boot for the edu devices (its PCI alias) and the
# mdev core with it; the tests load it themselves, with the mask they choose.
vng_base+=(--append=modprobe.blacklist=mdma_edu)
hidden "$kernel" && vng_base+=(--rodir="$kernel")
hidden "$repo" && vng_base+=(--rodir="$repo")
# the nested kernel of the QEMU end-to-end check (make test passes its folder)
[ -n "${MDEV_E2E_DIR:-}" ] && [ -d "$MDEV_E2E_DIR" ] && hidden "$MDEV_E2E_DIR" &&
	vng_base+=(--rodir="$MDEV_E2E_DIR")

# KVM hangs on some of these machines (seen: SeaBIOS stops after "Booting
# from ROM"; "KVM internal error. Suberror: 1 ... emulation failure" early in
# boot), so use it only when a short probe boot comes back; remember the
# answer per host kernel.
if [ "$accel" = auto ]; then
	probe=$logdir/kvm-probe.$(uname -r)
	if [ ! -f "$probe" ]; then
		printf '==> vm: probing KVM (one boot, at most 60 s)\n'
		echo tcg > "$probe"
		if [ -w /dev/kvm ]; then
			# stdout/stderr must be pipes: QEMU reopens /proc/self/fd/N
			# for several chardevs, and regular files would get
			# separate offsets and overwrite each other.
			timeout -k 5 60 "${vng_base[@]}" --exec "echo kvm-probe-ok" \
				</dev/null > >(cat >"$logdir/kvm-probe.out") \
				2> >(cat >"$logdir/kvm-probe.log") &
			pid=$!
			for i in $(seq 120); do
				grep -q kvm-probe-ok "$logdir/kvm-probe.out" && { echo kvm > "$probe"; break; }
				grep -q "KVM internal error" "$logdir/kvm-probe.log" && break
				# a working guest prints its banner within a second or two
				[ "$i" -gt 30 ] && ! grep -q "Linux version" "$logdir/kvm-probe.log" && break
				kill -0 $pid 2>/dev/null || break
				sleep 0.5
			done
			kill $pid 2>/dev/null
			wait $pid 2>/dev/null
		fi
		printf '==> vm: KVM probe says: %s\n' "$(cat "$probe")"
	fi
	accel=$(cat "$probe")
fi
[ "$accel" = tcg ] && vng_base+=(--disable-kvm)
for d in "${devices[@]}"; do
	vng_base+=("--qemu-opts=-device $d") # "=": the value starts with a dash
done

stamp=$(date +%Y%m%d-%H%M%S)
console=$logdir/console-$stamp.log
output=$logdir/output-$stamp.log
ln -sfn "$(basename "$console")" "$logdir/console-latest.log"
ln -sfn "$(basename "$output")" "$logdir/output-latest.log"
printf '==> vm: booting %s (%s, timeout %ss); console log: %s\n' \
	"$(cat "$kernel/include/config/kernel.release" 2>/dev/null)" "$accel" "$timeout" "$console"

cmd=$(printf '%q ' "$@")
# Run from / in the guest; expose where the logs go and that we are in a VM.
# The command's stderr joins its stdout, so the host's stderr carries only
# the kernel console.
# The guest starts with a fresh environment: forward the MDEV_* knobs.
fwd=$(for v in $(compgen -e | grep -E '^MDEV_'); do printf '%s=%q ' "$v" "${!v}"; done)
guestcmd="cd / && export $fwd MDEV_RS_OBJ=$kernel MDEV_RS_LOGDIR=$logdir MDEV_RS_VM=1 MDEV_RS_VM_DEVICES=$(printf '%q' "${devices[*]}") && { $cmd; } 2>&1"

tmo=()
[ "$timeout" != 0 ] && tmo=(timeout -k 10 "$timeout")
# Pipes, not files (see the KVM probe above).
if [ "${V:-0}" = 1 ]; then
	"${tmo[@]}" "${vng_base[@]}" "${rwdirs[@]}" --exec "$guestcmd" \
		2> >(tee "$console" >&2) | tee "$output"
else
	"${tmo[@]}" "${vng_base[@]}" "${rwdirs[@]}" --exec "$guestcmd" \
		2> >(cat >"$console") | tee "$output"
fi
rc=${PIPESTATUS[0]}
sleep 0.5 # let the console writer finish

problems=()
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	problems+=("timeout: the VM did not finish within ${timeout}s")
fi
# Kernel reports that fail a run, wherever they come from.
splats=$(grep -nE 'BUG:|WARNING:|Oops|general protection|Kernel panic|INFO: possible (recursive|circular)|possible circular locking|inconsistent lock state|INFO: task .* blocked for more than|KASAN:|UBSAN:|kmemleak: [0-9]+ new suspected|unreferenced object|Call Trace:' "$console" | head -n 20)
if [ -n "$splats" ]; then
	problems+=("kernel report in the console log:")
	problems+=("$splats")
fi
if ! grep -q 'Linux version' "$console"; then
	problems+=("the kernel never printed its banner (boot failed?)")
fi

for p in "${problems[@]}"; do
	printf 'vm-run: %s\n' "$p" >&2
done

if [ $summary = 1 ]; then
	res=$(grep -E '^RESULT: pass=[0-9]+ fail=[0-9]+ skip=[0-9]+' "$output" | tail -n1)
	pass=$(sed -nE 's/^RESULT: pass=([0-9]+).*/\1/p' <<<"$res")
	fail=$(sed -nE 's/^RESULT: pass=[0-9]+ fail=([0-9]+).*/\1/p' <<<"$res")
	skip=$(sed -nE 's/.* skip=([0-9]+).*/\1/p' <<<"$res")
	if [ -z "$res" ]; then
		echo "vm-run: the test runner printed no RESULT line" >&2
		pass=0 fail=0 skip=0
		problems+=("no result")
	fi
	[ ${#problems[@]} -gt 0 ] && fail=$((fail + 1))
	[ "$rc" != 0 ] && [ "$fail" = 0 ] && fail=1
	[ "${skip:-0}" != 0 ] && echo "($skip skipped)"
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ] && exit 0
	exit 1
fi
[ ${#problems[@]} -gt 0 ] && [ "$rc" = 0 ] && rc=1
exit "$rc"
