#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# mdma_edu (samples/vfio-mdev/mdma_edu.rs): QEMU's edu PCI device as an mdev
# parent whose own DMA engine runs the requests of mdma devices.  The VM
# runner adds the edu functions (make DEVICES=...; MDEV_RS_VM_DEVICES lists
# them in PCI slot order).  On each core of MDEV_TEST_CORES:
#
#  wide    the first edu whose dma_mask covers 32 bits, bound with
#          dma_bits=32, the others kept away with driver_override: the PCI
#          function is the parent (sysfs, mdevctl types/list/start/stop),
#          then mdma_test against it (MDMA_PARENT) on both IOMMU paths: the
#          requests, several devices copying at once on the shared engine
#          (contents and fairness), unbind and PCI remove with the device
#          open and a request in flight;
#  narrow  the first edu whose mask is below 32 bits, bound with that many
#          bits: every request is refused and changes nothing
#          (mdma_test's dma_reach with MDMA_UNREACHABLE=1).
#
# edu moves 4 KiB per DMA command and takes 100 ms for each, so the cases
# that move megabytes stay with the CPU mdma (EDU_SKIP lists them; they run
# there).  Ends with "edu: N passed, M failed".

. "$(dirname "$0")/lib.sh"

dir=${1:-${MDEV_RS_OBJ:?}/kselftest/vfio-mdev}
n=0 pass=0 fail=0
read -ra cores <<<"${MDEV_TEST_CORES:-mdev mdev_c}"
mdevctl_bin=${MDEVCTL:-mdevctl}

# mdma_test cases that move megabytes (minutes to hours at edu's pace)
EDU_SKIP="copy_4mib_crc max_len concurrent_unmap unmap_race_repeated dirty_log_4k"

# Adds a kselftest program's Totals to the counts (its cases are the checks);
# one TAP line, not counted again.
kselftest() { # kselftest <label> <env...> -- <args...>
	local label=$1 out rc totals tp tf ts te
	local -a envs=()
	shift
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	out=$(cd "$dir" && env "${envs[@]}" ./mdma_test "$@" 2>&1)
	rc=$?
	sed 's/^/# /' <<<"$out"
	totals=$(grep -E '^# Totals: pass:[0-9]+ fail:[0-9]+' <<<"$out" | tail -n1)
	tp=$(sed -nE 's/.*Totals: pass:([0-9]+).*/\1/p' <<<"$totals")
	tf=$(sed -nE 's/.* fail:([0-9]+).*/\1/p' <<<"$totals")
	ts=$(sed -nE 's/.* skip:([0-9]+).*/\1/p' <<<"$totals")
	te=$(sed -nE 's/.* error:([0-9]+).*/\1/p' <<<"$totals")
	# a skip is a failure here: every case listed is required
	pass=$((pass + ${tp:-0}))
	fail=$((fail + ${tf:-1} + ${ts:-0} + ${te:-0}))
	[ "${ts:-0}" -gt 0 ] && echo "# $label: ${ts} skipped, counted as failures"
	[ "${tp:-0}" = 0 ] && { echo "# $label: no test ran"; fail=$((fail + 1)); }
	n=$((n + 1))
	if [ "$rc" = 0 ] && [ -n "$totals" ] && [ "${ts:-0}" = 0 ] && [ "${tp:-0}" -gt 0 ]; then
		echo "ok $n - $label: $totals"
	else
		[ "$rc" != 0 ] && [ "${tf:-1}" = 0 ] && fail=$((fail + 1))
		echo "not ok $n - $label: ${totals:-no Totals line} (exit $rc)"
		return 1
	fi
}

# The edu functions, in slot order, and the mask bits of each
fns=() bits=()
while read -r f b; do
	fns+=("$f") bits+=("$b")
done < <(edu_functions)
# every function has the mask of its spec (edu_functions prints 0 otherwise)
tap_check "edu functions: ${fns[*]:-none} (masks: ${bits[*]:-?} bits), one per edu spec" \
	test "${#fns[@]}" -ge 2 -a -n "${bits[*]}" -a "${bits[*]/#0/x}" = "${bits[*]}"
wide="" narrow="" narrow_bits=""
for i in "${!fns[@]}"; do
	b=${bits[$i]}
	if [ "$b" -ge 32 ] && [ -z "$wide" ]; then
		wide=${fns[$i]}
	elif [ "$b" -gt 0 ] && [ "$b" -lt 32 ] && [ -z "$narrow" ]; then
		narrow=${fns[$i]} narrow_bits=$b
	fi
done
tap_check "a wide edu (mask of 32 bits or more): ${wide:-none}" test -n "$wide"
tap_check "a narrow edu (mask below 32 bits): ${narrow:-none} ($narrow_bits bits)" test -n "$narrow"

# load <core> <bits> <function>: the core and mdma_edu, bound to it only
load() {
	MDEV_CORE=$1 MDEV_SAMPLES="" mdev_load || return 1
	edu_only "$3"
	modprobe mdma_edu dma_bits="$2" || return 1
	[ "$(basename "$(readlink "/sys/bus/pci/devices/$3/driver")")" = mdma_edu ]
}

unload() {
	modprobe -r mdma_edu 2>/dev/null
	MDEV_CORE=$1 MDEV_SAMPLES="" mdev_unload
	edu_only ""
	[ ! -d /sys/module/mdma_edu ] && mdev_all_unloaded >/dev/null
}

skip_args=()
for t in $EDU_SKIP; do skip_args+=(-T "$t"); done
# On a lockdep kernel only the iommufd variant, as for mdma (run-tests.sh:
# type1's own lock order when a driver unpins in dma_unmap)
variant_args=()
reach_args=(-r mdma.group.dma_reach -r mdma.cdev.dma_reach)
if [ -e /proc/lockdep ]; then
	variant_args=(-v cdev)
	reach_args=(-r mdma.cdev.dma_reach)
	echo "# lockdep kernel: mdma_test runs its iommufd (cdev) variant only"
fi

for core in "${cores[@]}"; do
	[ -n "$wide" ] || break
	t0=$SECONDS
	if ! tap_check "core=$core: load with mdma_edu dma_bits=32 bound to $wide only" load "$core" 32 "$wide"; then
		dmesg | tail -n 5 | sed 's/^/# /'
		unload "$core"
		continue
	fi
	types=/sys/class/mdev_bus/$wide/mdev_supported_types
	tap_check "core=$core: $wide is the parent, type mdma_edu-dma only" \
		test "$(ls "$types" 2>/dev/null)" = mdma_edu-dma
	tap_check "core=$core: name, device_api, available_instances" test \
		"$(cat "$types/mdma_edu-dma/name" "$types/mdma_edu-dma/device_api" \
			"$types/mdma_edu-dma/available_instances" 2>&1 | tr '\n' '|')" = \
		"Mediated DMA engine|vfio-pci|8|"
	for f in "${fns[@]}"; do
		[ "$f" = "$wide" ] && continue
		tap_check "core=$core: $f (driver_override none) is not a parent" \
			test ! -e "/sys/class/mdev_bus/$f"
	done
	# mdevctl lists the PCI function as the parent
	out=$("$mdevctl_bin" types 2>&1)
	tap_check "core=$core: mdevctl types shows $wide with mdma_edu-dma" \
		grep -qzE "$wide"$'\n'"[[:space:]]+mdma_edu-dma" <<<"$out" ||
		sed 's/^/# /' <<<"$out"
	u=$(cat /proc/sys/kernel/random/uuid)
	tap_check "core=$core: mdevctl start -p $wide -t mdma_edu-dma" \
		"$mdevctl_bin" start -u "$u" -p "$wide" -t mdma_edu-dma
	out=$("$mdevctl_bin" list 2>&1)
	tap_check "core=$core: mdevctl list: $u $wide mdma_edu-dma" \
		grep -qE "^$u $wide mdma_edu-dma" <<<"$out" || sed 's/^/# /' <<<"$out"
	tap_check "core=$core: the mdev's parent link is the PCI function" test \
		"$(basename "$(readlink -f "/sys/bus/mdev/devices/$u/..")")" = "$wide"
	tap_check "core=$core: mdevctl stop" "$mdevctl_bin" stop -u "$u"
	tap_check "core=$core: no mdev left" test -z "$(ls /sys/bus/mdev/devices)"

	kselftest "mdma_test on mdma_edu $wide [core=$core]" \
		MDMA_PARENT="$wide" MDEV_SAMPLES=mdma_edu -- "${skip_args[@]}" "${variant_args[@]}"
	tap_check "core=$core: $wide is bound to mdma_edu again (after unbind/bind, remove/rescan)" \
		test "$(basename "$(readlink "/sys/bus/pci/devices/$wide/driver")")" = mdma_edu
	tap_check "core=$core: unload" unload "$core"
	echo "# [core=$core wide] took $((SECONDS - t0)) s"

	[ -n "$narrow" ] || continue
	t0=$SECONDS
	if tap_check "core=$core: load with mdma_edu dma_bits=$narrow_bits bound to $narrow only" \
		load "$core" "$narrow_bits" "$narrow"; then
		dmesg | grep "mdma_edu $narrow" | tail -n 1 | sed 's/^/# /'
		kselftest "mdma_test dma_reach on the $narrow_bits-bit $narrow [core=$core]" \
			MDMA_PARENT="$narrow" MDEV_SAMPLES=mdma_edu MDMA_UNREACHABLE=1 -- "${reach_args[@]}"
	fi
	tap_check "core=$core: unload" unload "$core"
	echo "# [core=$core narrow] took $((SECONDS - t0)) s"
done

echo "edu: $pass passed, $fail failed"
[ "$fail" = 0 ]
