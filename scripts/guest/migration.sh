#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of the cross-implementation migration check: the upstream C
# mtty and the Rust mtty (mtty_rs) stream the same format, so a device state
# saved by one resumes on the other.  They register the same class, parent
# and driver names and cannot be loaded together, so the modules are swapped
# between save and resume, as a host upgrade would.  For every core in
# MDEV_TEST_CORES (default "mdev_c mdev") and both IOMMU paths (group, cdev):
#
#   1. C mtty: program a dual-port mdev (mdev_mig_xfer save) and save it;
#   2. Rust mtty: resume it on a new mdev, check registers and FIFO bytes
#      (mdev_mig_xfer load); resume it again and save it without reading
#      the FIFO (mdev_mig_xfer resave): byte for byte the C stream;
#   3. C mtty: resume the Rust stream and check the state again.
#
# Prints "ok|not ok N - ..." per check and "migration: N passed, M failed";
# exits 0 only if all passed.  Kernel reports fail the run (vm-run.sh).
#
#   migration.sh <selftest-output-dir>

. "$(dirname "$0")/lib.sh"

dir=${1:?usage: migration.sh <selftest-output-dir>}
xfer=$dir/mdev_mig_xfer
read -ra cores <<<"${MDEV_TEST_CORES:-mdev_c mdev}"
pass=0 fail=0 n=0

type_dir=/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# with_impl <impl> <command...>: loads the core and <impl>, creates a
# dual-port mdev ($uuid), runs the command, removes the mdev and unloads.
with_impl() {
	local impl=$1 rc
	shift
	MDEV_SAMPLES=$impl
	if ! out=$(mdev_load 2>&1); then
		sed 's/^/# /' <<<"$out"
		mdev_unload_all >/dev/null
		return 1
	fi
	uuid=$(cat /proc/sys/kernel/random/uuid)
	echo "$uuid" > "$type_dir/create" || { mdev_unload; return 1; }
	"$@"
	rc=$?
	echo 1 > "/sys/bus/mdev/devices/$uuid/remove"
	mdev_unload
	return $rc
}

# The steps, on the mdev with_impl created ($uuid).
do_save() { "$xfer" save "$uuid" "$1" "$2"; }
do_load() { "$xfer" load "$uuid" "$1" "$2"; }
do_resave() { "$xfer" resave "$uuid" "$1" "$2" "$3" && cmp "$1" "$2"; }

for core in "${cores[@]}"; do
	MDEV_CORE=$core
	for path in group cdev; do
		t="[$core $path]"
		c=$tmp/c-$core-$path.bin r=$tmp/rs-$core-$path.bin
		tap_check "$t C mtty saves a programmed dual-port device" \
			with_impl mtty do_save "$c" "$path"
		tap_check "$t the C stream is 24 + 2 x 36 bytes" \
			test "$(stat -c %s "$c" 2>/dev/null)" = 96
		tap_check "$t the Rust mtty resumes the C stream with registers and FIFO intact" \
			with_impl mtty_rs do_load "$c" "$path"
		tap_check "$t the Rust mtty saves the resumed state byte for byte as the C mtty did" \
			with_impl mtty_rs do_resave "$c" "$r" "$path"
		tap_check "$t the C mtty resumes the Rust stream with registers and FIFO intact" \
			with_impl mtty do_load "$r" "$path"
	done
done
mdev_all_unloaded >/dev/null || check "nothing left loaded" mdev_unload_all

echo "migration: $pass passed, $fail failed"
[ "$fail" = 0 ]
