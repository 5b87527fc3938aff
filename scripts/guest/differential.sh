#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of the differential test of mdev cores and of mtty
# implementations: for every core in $MDEV_DIFF_CORES (default "mdev_c mdev")
# and every mtty implementation in $MDEV_MTTY_IMPLS (see lib.sh; default
# "mtty mtty_rs": the C mtty, then the Rust mtty), load the core with the
# samples ($MDEV_SAMPLES with its mtty replaced by that implementation),
# record the ABI dump of mdev_dump
# (tools/testing/selftests/vfio-mdev/mdev_dump.c, which dumps mtty_rs under
# the name of mtty), unload everything; then compare
#
#   - every core against the first, each with the first mtty implementation;
#   - on every core, every mtty implementation against the first.
#
# With MDEV_MTTY_IMPLS="" (or an MDEV_SAMPLES without mtty) there is one dump
# per core, MDEV_SAMPLES as it is: the cores are compared, as before the Rust
# mtty existed.  Prints exactly one line
#
#   differential: N differences
#
# (N = differing lines: the "<"/">" lines of plain diff, summed over the
# comparisons), then one line per comparison,
#
#   comparison <core>[/<mtty>] vs <core>[/<mtty>]: N differences[; <problem>]
#
# (a problem: a dump that failed or is missing; then N counts what could be
# compared), followed by the diffs (diff -u) if any, and exits 0 only when N
# is 0 and every core loaded, dumped and unloaded cleanly.  Progress notes
# before the summary line start with "#".
#
#   differential.sh [output-dir]
#
# output-dir  where dump-<core>.txt (C mtty, or no mtty listed),
#             dump-<core>-<mtty>.txt (another mtty implementation), their
#             .err (stderr) and diff-<dump>.txt (against the dump it is
#             compared with) go, dump-<core>[-<mtty>].<n>.txt for the n-th
#             run of a core listed more than once;
#             default $MDEV_RS_LOGDIR/differential (the host-writable log
#             folder of vm-run.sh), else /tmp/differential.
# MDEV_DUMP   the mdev_dump binary (default
#             $MDEV_RS_OBJ/kselftest/vfio-mdev/mdev_dump).

. "$(dirname "$0")/lib.sh"

cores=(${MDEV_DIFF_CORES:-mdev_c mdev})
dump=${MDEV_DUMP:-${MDEV_RS_OBJ:-}/kselftest/vfio-mdev/mdev_dump}
if [ -n "${1:-}" ]; then
	dir=$1
elif [ -n "${MDEV_RS_LOGDIR:-}" ]; then
	dir=$MDEV_RS_LOGDIR/differential
else
	dir=/tmp/differential
fi

failed=0
note() { echo "# $*"; }

impls_str=$(mdev_mtty_impls) || { echo "differential: 0 differences"; exit 1; }
read -ra impls <<<"$impls_str"
[ ${#impls[@]} -gt 0 ] || impls=("")

[ -x "$dump" ] || { note "no mdev_dump at '$dump' (set MDEV_DUMP)"; echo "differential: 0 differences"; exit 1; }
[ $((${#cores[@]} * ${#impls[@]})) -ge 2 ] ||
	note "only one core (${cores[*]}) and one mtty (${impls[*]:-as listed}): nothing to compare"
mkdir -p "$dir" || exit 1
rm -f "$dir"/dump-*.txt "$dir"/dump-*.err "$dir"/diff-*.txt

# Nothing of a core may be loaded when the next one loads; unload whatever a
# previous command left (vm-run.sh loads nothing, with-mdev.sh the default).
mdev_unload_all || failed=1

# One dump per core and mtty implementation: file[core index, impl index],
# its label, and whether it is good (loaded, dumped with exit 0, unloaded).
declare -A file label good
samples_all=$MDEV_SAMPLES
for i in "${!cores[@]}"; do
	core=${cores[$i]}
	for m in "${!impls[@]}"; do
		impl=${impls[$m]}
		samples=$samples_all
		name=dump-$core
		label[$i,$m]=$core
		if [ -n "$impl" ]; then
			samples=$(mdev_samples_with_mtty "$impl" "$samples_all")
			label[$i,$m]=$core/$impl
			[ "$impl" = mtty ] || name=$name-$impl
		fi
		# a core listed again gets dump-<core>[-<mtty>].<n>.txt
		k=0
		for ((j = 0; j < i; j++)); do
			[ "${cores[$j]}" = "$core" ] && k=$((k + 1))
		done
		[ $k -gt 0 ] && name=$name.$((k + 1))
		out=$dir/$name.txt
		file[$i,$m]=$out
		good[$i,$m]=0
		if ! MDEV_CORE=$core MDEV_SAMPLES=$samples mdev_load; then
			note "core $core samples $samples: load failed"
			failed=1
			MDEV_CORE=$core MDEV_SAMPLES=$samples mdev_unload
			mdev_all_unloaded >/dev/null || mdev_unload_all >/dev/null
			rm -f "$out"
			continue
		fi
		note "core $core samples $samples: dumping; /sys/module/$core/holders: $(ls "/sys/module/$core/holders" | tr '\n' ' ')"
		start=$SECONDS
		MDEV_SAMPLES=$samples "$dump" >"$out" 2>"$dir/$name.err"
		rc=$?
		note "core $core samples $samples: mdev_dump exit $rc, $(wc -l <"$out") lines, $((SECONDS - start)) s -> $name.txt"
		if [ $rc != 0 ]; then
			failed=1
			sed 's/^/#   /' "$dir/$name.err"
		else
			good[$i,$m]=1
		fi
		MDEV_CORE=$core MDEV_SAMPLES=$samples mdev_unload
		if ! mdev_all_unloaded; then
			failed=1
			good[$i,$m]=0
		fi
	done
done

# The modprobe install rule of lib.sh (mdev_c) must not outlive the run.
MDEV_CORE=none mdev_core_select

n=0
diffs=()
lines=()
compare() { # compare <key a> <key b>
	local a=${file[$1]} b=${file[$2]} k=0 d problem=
	if [ -f "$a" ] && [ -f "$b" ]; then
		d=$dir/diff-$(basename "$b")
		k=$(diff "$a" "$b" | grep -c '^[<>]')
		diff -u --label "$(basename "$a")" --label "$(basename "$b")" "$a" "$b" >"$d"
		n=$((n + k))
		[ "$k" -gt 0 ] && diffs+=("$d") || rm -f "$d"
	fi
	[ "${good[$1]}" = 1 ] || problem="no good dump of ${label[$1]}"
	[ "${good[$2]}" = 1 ] || problem="${problem:+$problem, }no good dump of ${label[$2]}"
	[ -n "$problem" ] && failed=1
	lines+=("comparison ${label[$1]} vs ${label[$2]}: $k differences${problem:+; $problem}")
}
for ((i = 1; i < ${#cores[@]}; i++)); do
	compare "0,0" "$i,0"
done
for i in "${!cores[@]}"; do
	for ((m = 1; m < ${#impls[@]}; m++)); do
		compare "$i,0" "$i,$m"
	done
done

note "dumps in $dir"
echo "differential: $n differences"
for l in "${lines[@]}"; do
	echo "$l"
done
for d in "${diffs[@]}"; do
	cat "$d"
done
[ "$n" = 0 ] && [ "$failed" = 0 ]
