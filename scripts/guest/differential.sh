#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of the differential test of mdev cores: for every core in
# $MDEV_DIFF_CORES (default "mdev_c mdev"), load it with the samples
# ($MDEV_SAMPLES, see lib.sh), record the ABI dump of mdev_dump
# (tools/testing/selftests/vfio-mdev/mdev_dump.c), unload everything; then
# diff every dump against the first.  Prints exactly one line
#
#   differential: N differences
#
# (N = differing lines: the "<"/">" lines of plain diff, summed over the
# pairs), followed by the diffs (diff -u) if any, and exits 0 only when N is
# 0 and every core loaded, dumped and unloaded cleanly.  Progress notes
# before the summary line start with "#".
#
#   differential.sh [output-dir]
#
# output-dir  where dump-<core>.txt, dump-<core>.err (its stderr) and
#             diff-dump-<core>.txt (against the first) go, dump-<core>.<n>.txt
#             for the n-th run of a core listed more than once;
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

[ -x "$dump" ] || { note "no mdev_dump at '$dump' (set MDEV_DUMP)"; echo "differential: 0 differences"; exit 1; }
[ ${#cores[@]} -ge 2 ] || note "only one core (${cores[*]}): nothing to compare"
mkdir -p "$dir" || exit 1
rm -f "$dir"/dump-*.txt "$dir"/dump-*.err "$dir"/diff-*.txt

# Nothing of a core may be loaded when the next one loads; unload whatever a
# previous command left (vm-run.sh loads nothing, with-mdev.sh the default).
mdev_unload_all || failed=1

files=()
for i in "${!cores[@]}"; do
	core=${cores[$i]}
	# dump-<core>.txt; a core listed again gets dump-<core>.<n>.txt
	name=dump-$core
	k=0
	for ((j = 0; j < i; j++)); do
		[ "${cores[$j]}" = "$core" ] && k=$((k + 1))
	done
	[ $k -gt 0 ] && name=$name.$((k + 1))
	out=$dir/$name.txt
	files+=("$out")
	if ! MDEV_CORE=$core mdev_load; then
		note "core $core: load failed"
		failed=1
		MDEV_CORE=$core mdev_unload
		rm -f "$out"
		continue
	fi
	note "core $core: dumping; /sys/module/$core/holders: $(ls "/sys/module/$core/holders" | tr '\n' ' ')"
	start=$SECONDS
	"$dump" >"$out" 2>"$dir/$name.err"
	rc=$?
	note "core $core: mdev_dump exit $rc, $(wc -l <"$out") lines, $((SECONDS - start)) s -> $name.txt"
	if [ $rc != 0 ]; then
		failed=1
		sed 's/^/#   /' "$dir/$name.err"
	fi
	MDEV_CORE=$core mdev_unload
	mdev_all_unloaded || failed=1
done

# The modprobe install rule of lib.sh (mdev_c) must not outlive the run.
MDEV_CORE=none mdev_core_select

n=0
diffs=()
a=${files[0]}
for b in "${files[@]:1}"; do
	[ -f "$a" ] && [ -f "$b" ] || { failed=1; continue; }
	d=$dir/diff-$(basename "$b")
	k=$(diff "$a" "$b" | grep -c '^[<>]')
	diff -u --label "$(basename "$a")" --label "$(basename "$b")" "$a" "$b" >"$d"
	n=$((n + k))
	[ "$k" -gt 0 ] && diffs+=("$d") || rm -f "$d"
done

note "dumps in $dir"
echo "differential: $n differences"
for d in "${diffs[@]}"; do
	cat "$d"
done
[ "$n" = 0 ] && [ "$failed" = 0 ]
