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
# Two more benchmarks of MDEV_BENCH_MODES concern the mdma sample (the Rust
# mediated DMA engine, samples/vfio-mdev/mdma.rs, which pins guest pages
# through kernel::vfio::PinnedMap):
#
# "map": the pinned-page map's data structure, Rust against C.  The Rust
# side writes 1024 (discarded: the C module runs a self-check of 2,024
# entries before its timed runs, which warms up its code and the slab), then
# each N of MDEV_BENCH_MAP_N to vendor/map_bench of a new mdma-dma mdev (mdma
# loaded on core MDEV_BENCH_MAP_CORE) and reads the "mdma_map_rs: n=N
# insert_ns= lookup_ns= remove_ns=" lines; the C side loads mdma_cache_c.ko
# (the i915 GVT gfn cache) with sizes=<the same N>, takes its
# "mdma_cache_c: n=N ..." lines from dmesg and unloads it.  One
# discarded warm-up round of each first (MDEV_BENCH_MAP_WARMUP=0: none),
# then MDEV_BENCH_MAP_RUNS rounds, C first in odd rounds and Rust first in
# even ones.  Lines
#
#   bench map_n<N>_<insert|lookup|remove> core=<c|rust> value=<ns/op> unit=ns run=<round>
#   result map_n<N>_<op> unit=ns c.median=V c.min=V c.max=V c.n=R rust.median=V ... ratio_rust=V
#
# (ratio_rust = Rust median / C median).
#
# "edu" (not in the default modes: make bench boots with 4 GiB, and mdma_edu's
# 32-bit DMA reaches only the first 4 GiB of guest memory, so run it with
# MDEV_BENCH_MODES=edu VM_MEM=2G make bench): mdma_bench -n 1,2,4 -s 64K (1, 2 and 4 devices copying at the same
# time, iommufd path) with mdma's CPU engine and with mdma_edu on the first
# edu function whose DMA mask covers 32 bits (the VM's DEVICES), where the
# data goes through edu's DMA engine; aggregate MiB/s and each round's
# slowest/fastest device.  Lines (engine in the core column, so that the
# summary's ratio is edu / cpu):
#   bench conc<N>_64k core=<cpu|edu> value=<MiB/s> unit=MiB/s min=.. max=.. fair=.. run=<round>
# "mdma": mdma_bench (tools/testing/selftests/vfio-mdev/mdma_bench.c), the
# end-to-end MiB/s of mdma COPY from user space on the type1 and the iommufd
# path, cold (pinning) and warm (pins cached), 4 KiB .. 16 MiB, on each core
# of MDEV_BENCH_MDMA_CORES for MDEV_BENCH_RUNS rounds, cores alternating:
#
#   bench mdma_<type1|iommufd>_<cold|warm>_<size> core=<core> value=<MiB/s> unit=MiB/s ... run=<round>
#   result mdma_<path>_<kind>_<size> unit=MiB/s mdev_c.median=V ... ratio_mdev=V
#
# (the mdev core is not on the DMA path: ratio_mdev should be 1 within the
# noise).
#
#   bench.sh [output-dir]
#
# output-dir          where raw.txt (the mdev_bench lines), raw-map.txt,
#                     raw-mdma.txt, results.txt (every result line) and
#                     bench-<round>-<core>-<mode>.err go; default
#                     $MDEV_RS_LOGDIR/bench, else /tmp/mdev-bench.
# MDEV_BENCH_CORES    cores, first is the reference (default "mdev_c mdev")
# MDEV_MTTY_IMPLS     mtty implementations, first is the reference (default
#                     "mtty mtty_rs"; mtty_rs.ko missing fails its rounds)
# MDEV_BENCH_RUNS     rounds per core (default 3)
# MDEV_BENCH_MODES    benchmarks (default "cycle scale uart display map mdma";
#                     cycle, scale, uart and display are mdev_bench's, map
#                     and mdma above: MDEV_BENCH_MODES="map mdma" runs only
#                     those two).  display compares the display samples of
#                     each pass: C mdpy and mbochs in the C mtty's, the
#                     Rust ports in the Rust mtty's (lib.sh's
#                     MDEV_RUST_PORTS), so its result_mtty lines are Rust
#                     port / C sample.
# MDEV_BENCH_CYCLES   create+remove cycles of "cycle" on mtty-1 (default 2000)
# MDEV_BENCH_UART_N   accesses per register loop of "uart" (default 500000)
# MDEV_BENCH_N        mdevs of "scale" on mbochs-small (default 10000; mbochs
#                     is loaded with count=4*N, its pool in MiB)
# MDEV_BENCH          the mdev_bench binary (default
#                     $MDEV_RS_OBJ/kselftest/vfio-mdev/mdev_bench)
# MDEV_BENCH_MAP_N    map: entries N, powers of two (default "1024 65536
#                     1048576")
# MDEV_BENCH_MAP_RUNS map: rounds of each side (default 5)
# MDEV_BENCH_MAP_CORE map: the core mdma runs on for the Rust side (default
#                     mdev; the map does not use the core)
# MDEV_BENCH_MAP_WARMUP  map: 1 (default) or 0: discarded warm-up rounds
# MDEV_BENCH_MDMA_CORES  mdma: cores, first is the reference (default
#                     $MDEV_BENCH_CORES)
# MDEV_BENCH_MDMA_ARGS   mdma: more mdma_bench options (e.g. "-r 7 -s 4K,1M")
# MDEV_MDMA_BENCH     the mdma_bench binary (default
#                     $MDEV_RS_OBJ/kselftest/vfio-mdev/mdma_bench)
# MDEV_BENCH_EDU_CORES  edu: cores (default "mdev")
# MDEV_BENCH_EDU_RUNS   edu: rounds (default 1: edu moves 4 KiB per 100 ms)
# MDEV_BENCH_EDU_KIB    edu: KiB each mdma_edu device copies (default 256;
#                     mdma's devices copy 64 times that)
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
read -ra all_modes <<<"${MDEV_BENCH_MODES:-cycle scale uart display map mdma}"
runs=${MDEV_BENCH_RUNS:-3}
cycles=${MDEV_BENCH_CYCLES:-2000}
n=${MDEV_BENCH_N:-10000}
uart_n=${MDEV_BENCH_UART_N:-500000}
bench=${MDEV_BENCH:-${MDEV_RS_OBJ:-}/kselftest/vfio-mdev/mdev_bench}
read -ra map_n <<<"${MDEV_BENCH_MAP_N:-1024 65536 1048576}"
map_runs=${MDEV_BENCH_MAP_RUNS:-5}
map_core=${MDEV_BENCH_MAP_CORE:-mdev}
map_warmup=${MDEV_BENCH_MAP_WARMUP:-1}
read -ra mdma_cores <<<"${MDEV_BENCH_MDMA_CORES:-${cores[*]}}"
read -ra mdma_args <<<"${MDEV_BENCH_MDMA_ARGS:-}"
mdma_bench=${MDEV_MDMA_BENCH:-${MDEV_RS_OBJ:-}/kselftest/vfio-mdev/mdma_bench}
# map and mdma are sections of their own; the other modes are mdev_bench's
modes=()
do_map=0
do_mdma=0
do_edu=0
read -ra edu_cores <<<"${MDEV_BENCH_EDU_CORES:-mdev}"
edu_runs=${MDEV_BENCH_EDU_RUNS:-1}
edu_kib=${MDEV_BENCH_EDU_KIB:-256}
for mode in "${all_modes[@]}"; do
	case "$mode" in
	edu) do_edu=1 ;;
	map) do_map=1 ;;
	mdma) do_mdma=1 ;;
	*) modes+=("$mode") ;;
	esac
done
if [ -n "${1:-}" ]; then
	dir=$1
elif [ -n "${MDEV_RS_LOGDIR:-}" ]; then
	dir=$MDEV_RS_LOGDIR/bench
else
	dir=/tmp/mdev-bench
fi

note() { echo "# $*"; }
failed=0

if [ "${#modes[@]}" -gt 0 ] && [ ! -x "$bench" ]; then
	note "no mdev_bench at '$bench' (set MDEV_BENCH)"
	exit 1
fi
if [ "$do_edu" = 1 ] && [ ! -x "$mdma_bench" ]; then
	note "no mdma_bench at '$mdma_bench': edu not run, the run fails"
	do_edu=0
	failed=1
fi
if [ "$do_mdma" = 1 ] && [ ! -x "$mdma_bench" ]; then
	note "no mdma_bench at '$mdma_bench' (set MDEV_MDMA_BENCH): mdma not run, the run fails"
	do_mdma=0
	failed=1
fi
mkdir -p "$dir" || exit 1
rm -f "$dir"/raw.txt "$dir"/raw-map.txt "$dir"/raw-mdma.txt "$dir"/raw-edu.txt \
	"$dir"/results.txt "$dir"/bench-*.err
raw=$dir/raw.txt
raw_map=$dir/raw-map.txt
raw_mdma=$dir/raw-mdma.txt
raw_edu=$dir/raw-edu.txt
: >"$raw"
: >"$raw_map"
: >"$raw_mdma"
: >"$raw_edu"

MDEV_SAMPLES="mtty mbochs"
impls_str=$(mdev_mtty_impls) || exit 1
read -ra impls <<<"$impls_str"
if [ "${#modes[@]}" -gt 0 ]; then
	for impl in "${impls[@]}"; do
		mdev_sample_installed "$impl" ||
			{ note "$impl is not installed for kernel $(uname -r) (modinfo $impl fails): its rounds fail"; failed=1; }
	done
fi

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

note "$(nproc) CPUs, $(sed -n 's/MemTotal: *//p' /proc/meminfo) memory, kernel $(uname -r) $(uname -v)"
[ "${#modes[@]}" -gt 0 ] &&
	note "mdev_bench: cores ${cores[*]}, mtty ${impls[*]}, $runs rounds, modes ${modes[*]}, cycles=$cycles N=$n uart=$uart_n"
for ((r = 1; r <= runs && ${#modes[@]} > 0; r++)); do
	for core in "${cores[@]}"; do
		for i in "${!impls[@]}"; do
			impl=${impls[$i]}
			MDEV_CORE=$core
			MDEV_SAMPLES=$(mdev_samples_with_mtty "$impl" "mtty mdpy mbochs")
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

# ------------------------------------------------------------------
# map: the pinned-page map of mdma (Rust) against the GVT cache (C)

mdma_type=/sys/class/mdev_bus/mdma/mdev_supported_types/mdma-dma

# map_lines <label> <round>: "<prefix>: n=N insert_ns=.. lookup_ns=..
# remove_ns=.." lines on stdin -> bench lines on stdout
map_lines() {
	awk -v label="$1" -v run="$2" '
	{
		n = ""
		for (i = 1; i <= NF; i++) {
			split($i, kv, "=")
			if (kv[1] == "n")
				n = kv[2]
			else if (kv[1] ~ /_ns$/ && n != "") {
				op = kv[1]; sub(/_ns$/, "", op)
				printf "bench map_n%s_%s core=%s value=%s unit=ns run=%s\n",
				       n, op, label, kv[2], run
			}
		}
	}'
}

# map_rust <round>: one mdma-dma mdev, vendor/map_bench for each N
map_rust() {
	local r=$1 uuid out got rc=0 m
	MDEV_CORE=$map_core
	MDEV_SAMPLES=mdma
	if ! mdev_load; then
		note "map round $r: loading core $map_core and mdma failed"
		mdev_unload
		return 1
	fi
	uuid=$(cat /proc/sys/kernel/random/uuid)
	if echo "$uuid" >"$mdma_type/create"; then
		# a discarded n=1024 first: mdma_cache_c runs its self-check
		# (2,024 inserts and lookups) before its timed runs
		for m in 1024 "${map_n[@]}"; do
			echo "$m" >"/sys/bus/mdev/devices/$uuid/vendor/map_bench" ||
				{ note "map round $r: map_bench n=$m failed"; rc=1; }
		done
		out=$(grep '^mdma_map_rs: n=' "/sys/bus/mdev/devices/$uuid/vendor/map_bench" |
			tail -n "${#map_n[@]}")
		echo 1 >"/sys/bus/mdev/devices/$uuid/remove" || rc=1
	else
		note "map round $r: cannot create an mdma-dma mdev"
		rc=1
	fi
	mdev_unload
	mdev_all_unloaded || rc=1
	got=$(grep -c . <<<"$out")
	[ "$got" = "${#map_n[@]}" ] ||
		{ note "map round $r: $got mdma_map_rs lines, expected ${#map_n[@]}"; rc=1; }
	[ "$r" = 0 ] || map_lines rust "$r" <<<"$out" | tee -a "$raw_map"
	return $rc
}

# map_c <round>: load mdma_cache_c (it benchmarks at load), read dmesg
map_c() {
	local r=$1 mark out got rc=0 sizes
	mark="bench.sh: map round $r $$ $RANDOM"
	sizes=${map_n[*]}
	echo "<6>$mark" >/dev/kmsg
	if ! modprobe mdma_cache_c "sizes=${sizes// /,}"; then
		note "map round $r: modprobe mdma_cache_c failed"
		return 1
	fi
	# the lines after the last marker, without the time stamp
	out=$(dmesg | awk -v m="$mark" 'index($0, m) { p = 1; s = ""; next } p { s = s $0 "\n" } END { printf "%s", s }' |
		sed 's/^\[[^]]*\] *//' | grep '^mdma_cache_c: ')
	rmmod mdma_cache_c || rc=1
	out=$(grep '^mdma_cache_c: n=' <<<"$out" || { sed 's/^/# /' <<<"$out" >&2; true; })
	got=$(grep -c . <<<"$out")
	[ "$got" = "${#map_n[@]}" ] ||
		{ note "map round $r: $got mdma_cache_c lines, expected ${#map_n[@]}"; rc=1; }
	[ "$r" = 0 ] || map_lines c "$r" <<<"$out" | tee -a "$raw_map"
	return $rc
}

if [ "$do_map" = 1 ]; then
	note "map: N ${map_n[*]}, $map_runs rounds, Rust on core $map_core, warm-up $map_warmup"
	mdev_sample_installed mdma_cache_c ||
		note "mdma_cache_c is not installed for kernel $(uname -r): its rounds fail"
	if [ "$map_warmup" = 1 ]; then
		map_c 0 || failed=1
		map_rust 0 || failed=1
	fi
	for ((r = 1; r <= map_runs; r++)); do
		if ((r % 2)); then
			map_c "$r" || failed=1
			map_rust "$r" || failed=1
		else
			map_rust "$r" || failed=1
			map_c "$r" || failed=1
		fi
		note "map round $r done"
	done
fi

# ------------------------------------------------------------------
# mdma: end-to-end DMA throughput (mdma_bench) on each core

if [ "$do_mdma" = 1 ]; then
	note "mdma: cores ${mdma_cores[*]}, $runs rounds, mdma_bench ${mdma_args[*]}"
	for ((r = 1; r <= runs; r++)); do
		for core in "${mdma_cores[@]}"; do
			MDEV_CORE=$core
			MDEV_SAMPLES=mdma
			if ! mdev_load; then
				note "round $r core $core samples mdma: load failed"
				failed=1
				mdev_unload
				continue
			fi
			err=$dir/bench-$r-$core-mdma.err
			out=$("$mdma_bench" -c "$core" "${mdma_args[@]}" 2>"$err")
			rc=$?
			grep '^bench ' <<<"$out" | sed "s/\$/ run=$r/" | tee -a "$raw_mdma"
			note "round $r core $core samples mdma mdma_bench: exit $rc"
			if [ "$rc" != 0 ]; then
				failed=1
				tail -n 20 "$err" | sed 's/^/#   /'
			fi
			mdev_unload
			mdev_all_unloaded || failed=1
		done
	done
fi

# edu_round <round> <core> <engine> <bench args...>: one mdma_bench -n run,
# its lines renamed for the summary (engine in the core column)
edu_round() {
	local r=$1 core=$2 engine=$3 out rc err
	shift 3
	err=$dir/bench-$r-$core-edu-$engine.err
	out=$("$mdma_bench" -c "$core" -p iommufd -n 1,2,4 -s 64K "$@" 2>"$err")
	rc=$?
	grep '^bench ' <<<"$out" |
		sed -E "s/^bench [a-z_]+_iommufd_(conc[0-9]+_[0-9a-z]+) core=[^ ]+/bench \1 core=$engine/; s/\$/ run=$r/" |
		tee -a "$raw_edu"
	note "round $r core $core engine $engine mdma_bench -n: exit $rc"
	if [ "$rc" != 0 ]; then
		failed=1
		tail -n 20 "$err" | sed 's/^/#   /'
	fi
}

if [ "$do_edu" = 1 ]; then
	wide=$(edu_functions | awk '$2 >= 32 { print $1; exit }')
	if [ -z "$wide" ]; then
		note "edu: no edu function with a 32-bit DMA mask (DEVICES): not run, the run fails"
		failed=1
	fi
	for ((r = 1; r <= edu_runs; r++)); do
		[ -n "$wide" ] || break
		for core in "${edu_cores[@]}"; do
			MDEV_CORE=$core MDEV_SAMPLES=mdma
			if mdev_load; then
				edu_round "$r" "$core" cpu -b "$((edu_kib * 64))K"
			else
				note "round $r core $core mdma: load failed"
				failed=1
			fi
			mdev_unload
			MDEV_SAMPLES=""
			edu_only "$wide"
			if mdev_load && modprobe mdma_edu dma_bits=32; then
				MDMA_PARENT=$wide edu_round "$r" "$core" edu -b "${edu_kib}K"
			else
				note "round $r core $core mdma_edu on $wide: load failed"
				failed=1
			fi
			modprobe -r mdma_edu
			mdev_unload
			edu_only ""
			mdev_all_unloaded || failed=1
		done
	done
fi

echo "$printk_level" >/proc/sys/kernel/printk
rm -f "$opts"
if [ -n "$udev_stopped" ]; then
	"$udev_stopped" --daemon && note "systemd-udevd started again" ||
		note "could not start $udev_stopped again"
fi
MDEV_CORE=none mdev_core_select

# summarize <labels> <raw file>: median, min and max per figure and label;
# ratio of each label's median to the first label's.  Names keep the order
# of their first appearance.
summarize() {
awk -v cores="$1" '
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
}' "$2" | tee -a "$dir/results.txt"
}

labels=()
for core in "${cores[@]}"; do
	for impl in "${impls[@]}"; do
		[ "$impl" = mtty ] && labels+=("$core") || labels+=("$core/$impl")
	done
done
: >"$dir/results.txt"
summarize "${labels[*]}" "$raw"
summarize "c rust" "$raw_map"
summarize "${mdma_cores[*]}" "$raw_mdma"
summarize "cpu edu" "$raw_edu"

note "raw figures in $raw, $raw_map, $raw_mdma and $raw_edu, results in $dir/results.txt"
[ "$failed" = 0 ]
