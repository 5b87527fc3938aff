#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of the mdev concurrency stress test: for every core in
# MDEV_TEST_CORES (default "mdev_c mdev", see lib.sh) and every mtty
# implementation in MDEV_MTTY_IMPLS (default "mtty mtty_rs"), load the core
# with the samples (MDEV_SAMPLES, its mtty replaced by that implementation),
# run mdev_stress (tools/testing/selftests/vfio-mdev/mdev_stress.c),
# unload everything, and on a kernel with kmemleak let delayed kobject
# releases finish (DEBUG_KOBJECT_RELEASE), scan twice and fail on any
# reported object.  New kernel reports (BUG/WARNING/lockdep/...) in dmesg
# during a core's run fail that core as well.  Prints one line per core (and
# mtty implementation)
#
#   ok|not ok stress core=<core>[ mtty=<mtty>]: <summary>
#
# and finally "stress: N passed, M failed"; exits 0 only if all passed.
#
#   MDEV_STRESS_BIN       the program (default
#                         $MDEV_RS_OBJ/kselftest/vfio-mdev/mdev_stress)
#   MDEV_STRESS_DURATION  seconds of stress per core (default 20)
#   MDEV_STRESS_THREADS   worker threads (default 4)
#   MDEV_STRESS_SETTLE    seconds to wait before the kmemleak scans (default 10)
#   MDEV_STRESS_ARGS      more arguments for mdev_stress: "-n" (no module
#                         unload/reload during the stress), "-k" (-n, and no
#                         unload at the end either: orphaned mdevs stay)
#   MDEV_STRESS_KEEP_LOADED=1  do not unload the core and the samples after the
#                         stress (the kmemleak scans run with them loaded);
#                         only with a single core and mtty implementation.
#
# With DEBUG_KOBJECT_RELEASE, unloading a sample crashes the kernel 1-4 s
# later with either core: the samples embed kobjects in static data (their
# parent struct device, the struct mdev_type array), whose delayed release
# runs after the module memory is freed.  On such a kernel use
# MDEV_STRESS_ARGS=-k MDEV_STRESS_KEEP_LOADED=1, one boot per core.

. "$(dirname "$0")/lib.sh"

bin=${MDEV_STRESS_BIN:-${MDEV_RS_OBJ:-}/kselftest/vfio-mdev/mdev_stress}
duration=${MDEV_STRESS_DURATION:-20}
threads=${MDEV_STRESS_THREADS:-4}
settle=${MDEV_STRESS_SETTLE:-10}
read -ra cores <<<"${MDEV_TEST_CORES:-mdev_c mdev}"
read -ra extra <<<"${MDEV_STRESS_ARGS:-}"
keep=${MDEV_STRESS_KEEP_LOADED:-0}
all_samples="$MDEV_ALL_SAMPLES $MDEV_SAMPLES"
samples_all=$MDEV_SAMPLES
kmemleak=/sys/kernel/debug/kmemleak
splat='BUG:|WARNING:|Oops|general protection|Kernel panic|INFO: possible (recursive|circular)|possible circular locking|inconsistent lock state|INFO: task .* blocked for more than|KASAN:|UBSAN:|kmemleak: [0-9]+ new suspected|unreferenced object|Call Trace:'

note() { echo "# $*"; }

pass=0 fail=0
result() { # result <ok:0|1> <core> <summary>
	if [ "$1" = 0 ]; then
		pass=$((pass + 1))
		echo "ok stress core=$2: $3"
	else
		fail=$((fail + 1))
		echo "not ok stress core=$2: $3"
	fi
}

loaded_modules() {
	local m out=
	for m in mdev mdev_c $all_samples; do
		[ -d "/sys/module/$m" ] && out="$out $m"
	done
	echo "${out# }"
}

# One cell per core and mtty implementation ("" when MDEV_SAMPLES lists no
# mtty: the samples as they are); the label is "<core>[ mtty=<mtty>]".
impls_err=
impls_str=$(mdev_mtty_impls 2>&1) || { impls_err=$impls_str; impls_str=; }
read -ra impls <<<"$impls_str"
[ ${#impls[@]} -gt 0 ] || impls=("")
cells=()
for core in "${cores[@]}"; do
	for impl in "${impls[@]}"; do
		cells+=("$core${impl:+ mtty=$impl}")
	done
done

give_up() { # give_up <reason>: every cell fails
	note "$1"
	for cell in "${cells[@]}"; do result 1 "$cell" "$1"; done
	echo "stress: $pass passed, $fail failed"
	exit 1
}
[ -n "$impls_err" ] && give_up "$impls_err"
[ -x "$bin" ] || give_up "no mdev_stress at '$bin' (set MDEV_STRESS_BIN)"
[ "$keep" = 1 ] && [ ${#cells[@]} -gt 1 ] &&
	give_up "MDEV_STRESS_KEEP_LOADED=1 needs a single core and mtty, not: ${cells[*]}"

# kmemleak needs debugfs
if [ ! -d /sys/kernel/debug/tracing ] && ! mountpoint -q /sys/kernel/debug; then
	mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
fi
if [ -e "$kmemleak" ]; then
	# leaks from before this test are not its business, but show them
	echo scan >"$kmemleak" 2>/dev/null
	old=$(grep -c '^unreferenced object' "$kmemleak" 2>/dev/null)
	[ "${old:-0}" != 0 ] && note "kmemleak: $old objects reported before the stress (cleared)"
	echo clear >"$kmemleak"
else
	note "no $kmemleak: leak check skipped"
fi

# Start from nothing loaded (with-mdev.sh may have loaded the default core).
for c in mdev mdev_c; do
	MDEV_CORE=$c MDEV_SAMPLES=$all_samples mdev_unload
done
left=$(loaded_modules)
[ -n "$left" ] && note "still loaded before the stress: $left"

stuck=
for cell in "${cells[@]}"; do
	if [ -n "$stuck" ]; then
		result 1 "$cell" "not run: mdev_stress hung on core=$stuck"
		continue
	fi
	core=${cell%% *}
	impl=
	[ "$cell" != "$core" ] && impl=${cell#* mtty=}
	MDEV_CORE=$core
	MDEV_SAMPLES=$samples_all
	[ -n "$impl" ] && MDEV_SAMPLES=$(mdev_samples_with_mtty "$impl" "$samples_all")
	dmesg_before=$(dmesg | wc -l)
	problems=()
	summary=

	if ! lout=$(mdev_load 2>&1); then
		sed 's/^/# /' <<<"$lout"
		mdev_unload
		result 1 "$cell" "cannot load core=$core samples=$MDEV_SAMPLES"
		continue
	fi

	note "core=$core samples=$MDEV_SAMPLES: mdev_stress -t $threads ${extra[*]} $duration"
	out=$(mktemp)
	"$bin" -t "$threads" "${extra[@]}" "$duration" >"$out" 2>&1 &
	pid=$!
	# the program's own watchdog ends it at duration + 120 s; a thread in
	# uninterruptible sleep keeps it from exiting, so do not wait forever
	deadline=$((SECONDS + duration + 180))
	while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
		sleep 1
	done
	if kill -0 "$pid" 2>/dev/null; then
		sed -e '/^#/!s/^/# /' "$out"
		note "mdev_stress (pid $pid) did not exit; its threads:"
		for task in /proc/"$pid"/task/*; do
			note "  task ${task##*/}: $(cat "$task/comm" 2>/dev/null) state $(sed -n 's/^State:\t//p' "$task/status" 2>/dev/null) wchan $(cat "$task/wchan" 2>/dev/null)"
			sed 's/^/#     /' "$task/stack" 2>/dev/null
		done
		# to resolve module addresses of the stacks
		sed 's/^/# modules: /' /proc/modules
		stuck=$cell
		result 1 "$cell" "mdev_stress hung (did not exit within $((duration + 180)) s)"
		continue
	fi
	wait "$pid"
	rc=$?
	sed -e '/^#/!s/^/# /' "$out"
	summary=$(sed -n 's/^mdev_stress: //p' "$out" | tail -n1)
	rm -f "$out"
	[ "$rc" = 0 ] || problems+=("mdev_stress exit $rc")
	[ -n "$summary" ] || summary="no summary line"

	if [ "$keep" = 1 ]; then
		note "core=$core: left loaded (MDEV_STRESS_KEEP_LOADED=1)"
	else
		mdev_unload
		left=$(loaded_modules)
		[ -n "$left" ] && problems+=("still loaded after unload: $left")
	fi

	if [ -e "$kmemleak" ]; then
		# DEBUG_KOBJECT_RELEASE delays releases by up to a few seconds
		sleep "$settle"
		scanned=1
		echo scan >"$kmemleak" || scanned=0
		sleep 5
		echo scan >"$kmemleak" || scanned=0
		leaks=$(grep -c '^unreferenced object' "$kmemleak")
		if [ "$scanned" = 0 ]; then
			problems+=("kmemleak: scan failed (disabled?)")
		elif [ "${leaks:-0}" != 0 ]; then
			sed 's/^/# kmemleak: /' "$kmemleak" | head -n 200
			problems+=("kmemleak: $leaks objects")
			echo clear >"$kmemleak"
		else
			summary="$summary kmemleak=0"
		fi
	fi

	reports=$(dmesg | tail -n +"$((dmesg_before + 1))" | grep -E "$splat")
	if [ -n "$reports" ]; then
		sed 's/^/# dmesg: /' <<<"$reports" | head -n 40
		problems+=("kernel reports in dmesg: $(wc -l <<<"$reports") lines")
	fi

	if [ ${#problems[@]} = 0 ]; then
		result 0 "$cell" "$summary"
	else
		result 1 "$cell" "$(IFS=';'; echo "${problems[*]}"); $summary"
	fi
done

echo "stress: $pass passed, $fail failed"
[ "$fail" = 0 ]
