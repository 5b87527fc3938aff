#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of "make test": load the mdev core and samples, prove the Rust
# module toolchain with rust_minimal, run every vfio-mdev kselftest program,
# and print TAP plus a "RESULT: pass=N fail=N skip=N" line that the host turns
# into "N passed, N failed".  Counts are per test case (kselftest harness
# Totals); a program that dies without its Totals line counts as one failure.
#
#   run-tests.sh <selftest-output-dir> [program...]
#
# MDEV_TESTS (space separated program names) restricts the run as well.

. "$(dirname "$0")/lib.sh"

dir=$1
shift
progs=("$@")
[ ${#progs[@]} -gt 0 ] || read -ra progs <<<"${MDEV_TESTS:-}"
if [ ${#progs[@]} -eq 0 ]; then
	for p in "$dir"/*_test; do
		[ -x "$p" ] && progs+=("$(basename "$p")")
	done
fi

pass=0 fail=0 skip=0 n=0
echo "TAP version 13"
echo "1..$(( ${#progs[@]} + 3 ))"

result() { # result <ok:0|1> <description>
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n $2"; else echo "not ok $n $2"; fi
}

# 0. KUnit ran at boot (the Rust `kernel` crate doctests, CONFIG_KUNIT=y):
#    count its test cases from the console.
kunit=$(dmesg | sed -nE 's/.*# Totals: pass:([0-9]+) fail:([0-9]+) skip:([0-9]+) total:[0-9]+.*/\1 \2 \3/p' | tail -n1)
if [ -n "$kunit" ]; then
	read -r kp kf ks <<<"$kunit"
	dmesg | grep -E '^\[[ 0-9.]+\] +(not )?ok [0-9]+ ' | grep 'not ok' | sed 's/^/# kunit: /'
	pass=$((pass + kp))
	fail=$((fail + kf))
	skip=$((skip + ks))
	result "$kf" "kunit at boot: pass:$kp fail:$kf skip:$ks"
else
	dmesg | grep -iE 'kunit|ktap' | tail -n 5 | sed 's/^/# /'
	fail=$((fail + 1))
	result 1 "kunit at boot: no KUnit results in the kernel log"
fi

# 1. The Rust module toolchain works end to end.
rust_ok=1
dmesg -C
if modprobe rust_minimal && [ -d /sys/module/rust_minimal ] &&
	dmesg | grep -q 'Rust minimal sample (init)' &&
	modprobe -r rust_minimal && dmesg | grep -q 'Rust minimal sample (exit)'; then
	rust_ok=0
	pass=$((pass + 1))
else
	dmesg | tail -n 20 | sed 's/^/# /'
	fail=$((fail + 1))
fi
result $rust_ok "rust_minimal: loads, prints init/exit, unloads"

# 2. The core and the samples load.
if mdev_load; then
	pass=$((pass + 1))
	result 0 "load core=$MDEV_CORE samples=$MDEV_SAMPLES"
else
	fail=$((fail + 1))
	result 1 "load core=$MDEV_CORE samples=$MDEV_SAMPLES"
fi

# 3. The kselftest programs.
for p in "${progs[@]}"; do
	echo "# selftests: vfio-mdev: $p"
	out=$(mktemp)
	(cd "$dir" && "./$p") >"$out" 2>&1
	rc=$?
	sed 's/^/# /' "$out"
	totals=$(grep -E '^# Totals: pass:[0-9]+ fail:[0-9]+' "$out" | tail -n1)
	if [ -n "$totals" ]; then
		tp=$(sed -nE 's/.*Totals: pass:([0-9]+).*/\1/p' <<<"$totals")
		tf=$(sed -nE 's/.* fail:([0-9]+).*/\1/p' <<<"$totals")
		ts=$(sed -nE 's/.* skip:([0-9]+).*/\1/p' <<<"$totals")
		te=$(sed -nE 's/.* error:([0-9]+).*/\1/p' <<<"$totals")
		pass=$((pass + tp))
		fail=$((fail + tf + ${te:-0}))
		skip=$((skip + ts))
		[ "$rc" != 0 ] && [ "$tf" = 0 ] && fail=$((fail + 1))
	else
		echo "# $p exited with $rc without a Totals line"
		fail=$((fail + 1))
		[ "$rc" = 0 ] && rc=1
	fi
	if [ "$rc" = 4 ]; then
		n=$((n + 1)); echo "ok $n selftests: vfio-mdev: $p # SKIP"
	else
		result "$rc" "selftests: vfio-mdev: $p"
	fi
	rm -f "$out"
done

mdev_unload
echo "RESULT: pass=$pass fail=$fail skip=$skip"
[ "$fail" = 0 ]
