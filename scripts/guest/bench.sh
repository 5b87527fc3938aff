#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of "make bench": the mdev_bench benchmarks
# (tools/testing/selftests/vfio-mdev/mdev_bench.c) on every core of
# $MDEV_BENCH_CORES and every mtty implementation of $MDEV_MTTY_IMPLS
# (default "mtty mtty_rs": the C mtty and the Rust mtty) in one boot.  Each
# round loads one core with one mtty and mbochs, runs every benchmark once
# and unloads everything; the rounds alternate the cores and the mtty
# implementations (C core + C mtty, C core + Rust mtty, Rust core + C mtty,
# ...) so that noise from other load on the machine spreads over all of
# them.  Benchmarks that do not use mtty ("scale") run with the first mtty
# implementation only.  Figures are labelled with the core, and with
# "<core>/<mtty>" for an mtty implementation other than the C mtty.  Prints
# every figure as mdev_bench does,
#
#   bench <name> core=<label> value=<number> unit=<unit> run=<round>
#
# then one line per figure,
#
#   result <name> unit=<unit> <label>.median=V <label>.min=V <label>.max=V ...
#          ratio_<label>=V ...
#
# (one line; the ratio is the median of <label> over the median of the first
# label, so with the default order ratio_mdev is Rust core / C core), and
# for every figure measured with two mtty implementations on one core
#
#   result_mtty <name> unit=<unit> core=<core> mtty.median=V
#               <mtty>.median=V ratio_<mtty>=V
#
# (one line; ratio_mtty_rs is Rust mtty / C mtty on that core), and exits
# non-zero if a core or sample failed to load or a benchmark failed.  The
# "uart" benchmark (1-byte VFIO region reads and writes of the UART
# registers) compares the mtty implementations: the mdev core is not on that
# path.
#
#   bench.sh [output-dir]
#
# output-dir          where raw.txt (the bench lines), results.txt (the
#                     result lines) and bench-<round>-<core>-<mode>.err go;
#                     default $MDEV_RS_LOGDIR/bench, else /tmp/mdev-bench.
# MDEV_BENCH_CORES    cores, first is the reference (default "mdev_c mdev")
# MDEV_MTTY_IMPLS     mtty implementations, first is the reference (default
#                     "mtty mtty_rs"; mtty_rs.ko missing fails its rounds)
# MDEV_BENCH_RUNS     rounds per core (default 3)
# MDEV_BENCH_MODES    benchmarks (default "cycle scale uart")
# MDEV_BENCH_CYCLES   create+remove cycles of "cycle" on mtty-1 (default 2000)
# MDEV_BENCH_UART_N   accesses per register loop of "uart" (default 500000)
# MDEV_BENCH_N        mdevs of "scale" on mbochs-small (default 10000; mbochs
#                     is loaded with count=4*N, its pool in MiB)
# MDEV_BENCH          the mdev_bench binary (default
#                     $MDEV_RS_OBJ/kselftest/vfio-mdev/mdev_bench)
# MDEV_BENCH_UDEV     stop (default): stop systemd-udevd for the run and
#                     start it again afterwards; keep: leave it running (it
#                     then handles every uevent concurrently, the same work
#                     for each core, on the same 2 vCPUs)
#
# The console log level is lowered to 5 while the benchmarks run: every
# create and remove logs KERN_INFO lines (IOMMU group, mbochs_init_dev), and
# a serial console under TCG would time those instead of the core.  Warnings
# and worse still reach the console, where vm-run.sh looks for them.

. "$(dirname "$0")/lib.sh"

read -ra cores <<<"${MDEV_BENCH_CORES:-mdev_c mdev}"
read -ra modes <<<"${MDEV_BENCH_MODES:-cycle scale uart}"
runs=${MDEV_BENCH_RUNS:-3}
cycles=${MDEV_BENCH_CYCLES:-2000}
n=${MDEV_BENCH_N:-10000}
uart_n=${MDEV_BENCH_UART_N:-500000}
bench=${MDEV_BENCH:-${MDEV_RS_OBJ:-}/kselftest/vfio-mdev/mdev_bench}
if [ -n "${1:-}" ]; then
	dir=$1
elif [ -n "${MDEV_RS_LOGDIR:-}" ]; then
	dir=$MDEV_RS_LOGDIR/bench
else
	dir=/tmp/mdev-bench
fi

note() { echo "# $*"; }
failed=0

[ -x "$bench" ] || { note "no mdev_bench at '$bench' (set MDEV_BENCH)"; exit 1; }
mkdir -p "$dir" || exit 1
rm -f "$dir"/raw.txt "$dir"/results.txt "$dir"/bench-*.err
raw=$dir/raw.txt
: >"$raw"

MDEV_SAMPLES="mtty mbochs"
impls_str=$(mdev_mtty_impls) || exit 1
read -ra impls <<<"$impls_str"
for impl in "${impls[@]}"; do
	mdev_sample_installed "$impl" ||
		{ note "$impl is not installed for kernel $(uname -r) (modinfo $impl fails): its rounds fail"; failed=1; }
done

# Whatever an earlier command left loaded goes first.
mdev_unload_all || failed=1

# mbochs-small takes 4 MiB of mbochs' pool ("count", in MiB) per instance;
# the pages are only allocated when the guest touches them.
opts=/etc/modprobe.d/mdev-bench.conf
mkdir -p /etc/modprobe.d
echo "options mbochs count=$((4 * n))" >"$opts"

# udevd handles several uevents per create and remove, on the same vCPUs
# as the benchmark: noise, and not the core's work.
udev_stopped=
if [ "${MDEV_BENCH_UDEV:-stop}" = stop ] && pidof systemd-udevd >/dev/null; then
	udevd=$(command -v systemd-udevd || ls /lib/systemd/systemd-udevd /usr/lib/systemd/systemd-udevd 2>/dev/null | head -n1)
	udevadm settle --timeout=120
	if udevadm control --exit; then
		udev_stopped=$udevd
		note "systemd-udevd stopped for the run (MDEV_BENCH_UDEV=keep keeps it)"
	fi
fi

read -r printk_level _ </proc/sys/kernel/printk
echo 5 >/proc/sys/kernel/printk

note "mdev_bench: cores ${cores[*]}, mtty ${impls[*]}, $runs rounds, modes ${modes[*]}, cycles=$cycles N=$n uart=$uart_n"
note "$(nproc) CPUs, $(sed -n 's/MemTotal: *//p' /proc/meminfo) memory, kernel $(uname -r) $(uname -v)"
for ((r = 1; r <= runs; r++)); do
	for core in "${cores[@]}"; do
		for i in "${!impls[@]}"; do
			impl=${impls[$i]}
			MDEV_CORE=$core
			MDEV_SAMPLES=$(mdev_samples_with_mtty "$impl" "mtty mbochs")
			label=$core
			[ "$impl" = mtty ] || label=$core/$impl
			if ! mdev_load; then
				note "round $r core $core samples $MDEV_SAMPLES: load failed"
				failed=1
				mdev_unload
				continue
			fi
			for mode in "${modes[@]}"; do
				case "$mode" in
				cycle) args=(-n "$cycles") ;;
				scale) args=(-n "$n") ;;
				uart) args=(-n "$uart_n") ;;
				*) args=() ;;
				esac
				# scale does not use mtty: once per core
				[ "$mode" = scale ] && [ "$i" != 0 ] && continue
				err=$dir/bench-$r-${label//\//-}-$mode.err
				out=$("$bench" -c "$label" "${args[@]}" "$mode" 2>"$err")
				rc=$?
				grep '^bench ' <<<"$out" | sed "s/\$/ run=$r/" | tee -a "$raw"
				note "round $r core $core samples $MDEV_SAMPLES $mode: exit $rc"
				if [ "$rc" != 0 ]; then
					failed=1
					tail -n 20 "$err" | sed 's/^/#   /'
				fi
			done
			mdev_unload
			mdev_all_unloaded || failed=1
		done
	done
done

echo "$printk_level" >/proc/sys/kernel/printk
rm -f "$opts"
if [ -n "$udev_stopped" ]; then
	"$udev_stopped" --daemon && note "systemd-udevd started again" ||
		note "could not start $udev_stopped again"
fi
MDEV_CORE=none mdev_core_select

# Median, min and max per figure and core; ratio of each core's median to
# the first core's.  Names keep the order of their first appearance.
labels=()
for core in "${cores[@]}"; do
	for impl in "${impls[@]}"; do
		[ "$impl" = mtty ] && labels+=("$core") || labels+=("$core/$impl")
	done
done
awk -v cores="${labels[*]}" '
function med(k, m,   i, j, t, a) {
	for (i = 1; i <= m; i++)
		a[i] = vals[k, i]
	for (i = 2; i <= m; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
		}
	lo = a[1]; hi = a[m]
	return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
$1 == "bench" {
	name = $2
	c = $3; sub(/^core=/, "", c)
	v = $4; sub(/^value=/, "", v)
	u = $5; sub(/^unit=/, "", u)
	if (!(name in unit)) {
		order[++nn] = name
		unit[name] = u
	}
	k = name SUBSEP c
	vals[k, ++cnt[k]] = v + 0
}
END {
	nc = split(cores, cl, " ")
	for (i = 1; i <= nn; i++) {
		name = order[i]
		line = "result " name " unit=" unit[name]
		ref = ""
		ratios = ""
		for (j = 1; j <= nc; j++) {
			k = name SUBSEP cl[j]
			if (!cnt[k]) {
				line = line " " cl[j] ".median=none"
				continue
			}
			m = med(k, cnt[k])
			line = line sprintf(" %s.median=%.6g %s.min=%.6g %s.max=%.6g %s.n=%d",
					    cl[j], m, cl[j], lo, cl[j], hi, cl[j], cnt[k])
			if (j == 1)
				ref = m
			else if (ref != "" && ref != 0)
				ratios = ratios sprintf(" ratio_%s=%.3f", cl[j], m / ref)
		}
		print line ratios
	}
	# the same figure with two mtty implementations on one core
	for (i = 1; i <= nn; i++) {
		name = order[i]
		for (j = 1; j <= nc; j++) {
			if (split(cl[j], p, "/") != 2)
				continue
			k = name SUBSEP cl[j]
			r = name SUBSEP p[1]
			if (!cnt[k] || !cnt[r])
				continue
			mr = med(r, cnt[r])
			m = med(k, cnt[k])
			line = sprintf("result_mtty %s unit=%s core=%s mtty.median=%.6g %s.median=%.6g",
				       name, unit[name], p[1], mr, p[2], m)
			if (mr != 0)
				line = line sprintf(" ratio_%s=%.3f", p[2], m / mr)
			print line
		}
	}
}' "$raw" | tee "$dir/results.txt"

note "raw figures in $raw, results in $dir/results.txt"
[ "$failed" = 0 ]
