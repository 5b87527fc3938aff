#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Compile-fail tests of the safe Rust API (Linux's doctests cannot be
# compile_fail: rustdoc --test-builder builds them all into one KUnit suite).
# Each tools/testing/selftests/vfio-mdev/compile_fail/<case>.rs, after the
# shared prelude.rs.inc (module, a VFIO device, an mdev driver that calls the
# case's in_probe/in_attribute), is a small vendor module in safe Rust; its
# "// expect:" line is either "pass" (the
# control case, which must build) or an extended regex that rustc's output
# must match, with no other error (the misuse must be refused for that
# reason alone).  Each case is
# built as an external module against the kernel in <obj>.
#
#   compile-fail.sh <cases-dir> <work-dir> <tap-file> <make command...>
#
# Writes TAP ("ok N - ..." / "not ok N - ...") to <tap-file>, which the
# guest's run-tests.sh counts, and exits non-zero if a case failed.
set -uo pipefail

cases=$1 work=$2 tap=$3
shift 3
mkdir -p "$work"
: >"$tap"
n=0 failed=0
for src in "$cases"/*.rs; do
	name=$(basename "$src" .rs)
	expect=$(sed -n 's|^// expect: ||p' "$src" | head -n1)
	dir=$work/$name
	mkdir -p "$dir"
	cat "$cases/prelude.rs.inc" "$src" >"$dir/cf_$name.rs"
	echo "obj-m := cf_$name.o" >"$dir/Kbuild"
	out=$("$@" M="$dir" modules 2>&1)
	rc=$?
	n=$((n + 1))
	if [ "$expect" = pass ]; then
		ok=$([ $rc = 0 ] && echo 1)
		what="$name builds (control case)"
	else
		# the expected error, and no other (so it fails for that reason)
		others=$(grep -E '^error' <<<"$out" | grep -vE 'aborting due to' |
			grep -vE -- "$expect")
		ok=$([ $rc != 0 ] && grep -qE -- "$expect" <<<"$out" &&
			[ -z "$others" ] && echo 1)
		what="$name is refused by the compiler: $expect"
	fi
	if [ -n "$ok" ]; then
		echo "ok $n - compile-fail: $what" >>"$tap"
	else
		failed=$((failed + 1))
		echo "not ok $n - compile-fail: $what (make exited $rc)" >>"$tap"
		grep -E '^(error|warning)' <<<"$out" | head -n 5 | sed 's/^/# /' >>"$tap"
	fi
done
cat "$tap"
[ "$failed" = 0 ]
