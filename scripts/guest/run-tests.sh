#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of "make test": count the KUnit results of the boot, prove the
# Rust module toolchain with rust_minimal, then for each mdev core in
# MDEV_TEST_CORES (default "mdev_c mdev": the upstream C core, then the
# in-tree core, Rust with CONFIG_VFIO_MDEV_RUST) and each mtty implementation
# in MDEV_MTTY_IMPLS (default "mtty mtty_rs": the C mtty, then the Rust
# mtty; see lib.sh) load the core with the samples (MDEV_SAMPLES with its
# mtty replaced by that implementation) and run every vfio-mdev kselftest
# program, and finally compare the ABI dumps (differential.sh): of the cores
# with the first mtty, and of each mtty implementation against the first on
# every core.  Then mdevctl (Debian's 1.2.0 and 1.4.0 from crates.io),
# libvirt (libvirt-test.sh) and the stress test, on every core and mtty.
# Prints TAP plus a "RESULT: pass=N fail=N skip=N" line that the host turns
# into "N passed, N failed".  Counts are per test case (kselftest harness
# Totals); a program that dies without its Totals line, or is not run
# because its core and samples did not load, counts as one failure.
#
#   run-tests.sh <selftest-output-dir> [program...]
#
# MDEV_TESTS (space separated program names) restricts the run as well.
# The Rust mtty is required: if mtty_rs.ko is not installed (modinfo), its
# cells fail; MDEV_MTTY_IMPLS=mtty leaves them out.

. "$(dirname "$0")/lib.sh"

# --e2e-only: only the QEMU end-to-end check (make qemu-e2e).
# --clients-only: only mdevctl and libvirt (make clients).
e2e_only=0 clients_only=0
case "${1:-}" in
--e2e-only) e2e_only=1; shift ;;
--clients-only) e2e_only=1 clients_only=1; shift ;;
esac

dir=$1
shift
progs=("$@")
[ ${#progs[@]} -gt 0 ] || read -ra progs <<<"${MDEV_TESTS:-}"
if [ ${#progs[@]} -eq 0 ]; then
	for p in "$dir"/*_test; do
		[ -x "$p" ] && progs+=("$(basename "$p")")
	done
fi
# The DMA-engine programs (mdma_*) run in their own cell per core with the
# mdma sample (MDEV_MDMA=0 leaves them out); the others in the core x mtty
# cells.
cell_progs=() dma_progs=()
for p in "${progs[@]}"; do
	case $p in
	mdma_*) [ "${MDEV_MDMA:-1}" = 1 ] && dma_progs+=("$p") ;;
	*) cell_progs+=("$p") ;;
	esac
done
progs=("${cell_progs[@]}")

# Cores to test, one after the other in this boot (see lib.sh for the names).
read -ra cores <<<"${MDEV_TEST_CORES:-mdev_c mdev}"

# mtty implementations per core: none (one cell, MDEV_SAMPLES as it is) when
# MDEV_SAMPLES lists no mtty; a bad MDEV_MTTY_IMPLS fails every cell.
impls_err=
impls_str=$(mdev_mtty_impls 2>&1) || { impls_err=$impls_str; impls_str=; }
read -ra impls <<<"$impls_str"
cell_impls=("${impls[@]}")
[ ${#cell_impls[@]} -gt 0 ] || cell_impls=("")
# what the other scripts get: the same list, or the bad one (they fail too)
impls_arg=${impls[*]}
[ -n "$impls_err" ] && impls_arg=$MDEV_MTTY_IMPLS

# Comparisons of the differential: each core against the first (first
# mtty), each mtty against the first on every core.
ncmp=$(( ${#cores[@]} - 1 + ${#cores[@]} * (${#cell_impls[@]} - 1) ))

# QEMU end to end (MDEV_E2E=0 leaves it out): the C mtty on the C core and
# the Rust mtty on the Rust core, for the cores being tested.
e2e_runs=()
if [ "${MDEV_E2E:-1}" = 1 ]; then
	for r in mdev_c:mtty mdev:mtty_rs; do
		case " ${cores[*]} " in *" ${r%%:*} "*) e2e_runs+=("$r") ;; esac
	done
	# and the guest migrated from the C mtty on the C core to the Rust mtty
	# on the Rust core (qemu-e2e.sh --cross), and a guest driving the mdma
	# DMA engine migrated live on the Rust core (qemu-e2e.sh --dma)
	if [ "${MDEV_E2E_MIGRATE:-1}" != 0 ]; then
		[[ " ${cores[*]} " == *" mdev_c "* && " ${cores[*]} " == *" mdev "* &&
			" ${impls[*]} " == *" mtty "* && " ${impls[*]} " == *" mtty_rs "* ]] &&
			e2e_runs+=(cross:cross)
		[[ " ${cores[*]} " == *" mdev "* ]] && [ "${MDEV_MDMA:-1}" = 1 ] &&
			e2e_runs+=(mdev:dma)
	fi
	# and the Rust mdpy's display, shown by QEMU (qemu-e2e.sh --display,
	# MDEV_DISPLAY=0 leaves it out)
	[[ " ${cores[*]} " == *" mdev "* ]] && [ "${MDEV_DISPLAY:-1}" = 1 ] &&
		e2e_runs+=(mdev:display)
fi
# Cross-implementation migration (C mtty <-> Rust mtty) needs both.
if [ -z "${MDEV_MIGRATION:-}" ]; then
	MDEV_MIGRATION=0
	[[ " ${impls[*]} " == *" mtty "* && " ${impls[*]} " == *" mtty_rs "* ]] && MDEV_MIGRATION=1
fi
nfirst=4
# the emulated PCI devices the runner was asked for (vm-run.sh --device)
read -ra vm_devices <<<"${MDEV_RS_VM_DEVICES:-}"
[ ${#vm_devices[@]} -gt 0 ] && nfirst=$((nfirst + 1))
if [ "$e2e_only" = 1 ]; then
	nfirst=0 progs=() dma_progs=() cell_impls=() ncmp=0
	MDEV_STRESS=0 MDEV_MISUSE=0 MDEV_MIGRATION=0
	if [ "$clients_only" = 1 ]; then
		e2e_runs=()
	else
		MDEV_MDEVCTL=0 MDEV_LIBVIRT=0
	fi
fi

pass=0 fail=0 skip=0 n=0
echo "TAP version 13"
nextra=$(( ncmp + ${#e2e_runs[@]} ))
[ "${MDEV_MDEVCTL:-1}" = 1 ] && nextra=$((nextra + 2))
[ "${MDEV_LIBVIRT:-1}" = 1 ] && nextra=$((nextra + 1))
[ "${MDEV_MISUSE:-1}" = 1 ] && nextra=$((nextra + 1))
[ "$MDEV_MIGRATION" = 1 ] && nextra=$((nextra + 1))
[ "${MDEV_STRESS:-1}" = 1 ] && nextra=$((nextra + 1))
ndma=0
[ ${#dma_progs[@]} -gt 0 ] && ndma=$(( ${#cores[@]} * (${#dma_progs[@]} + 1) ))
echo "1..$(( nfirst + ${#cores[@]} * ${#cell_impls[@]} * (${#progs[@]} + 1) + ndma + nextra ))"
echo "# cores: ${cores[*]}; mtty implementations: ${impls[*]:-(none: MDEV_SAMPLES=\"$MDEV_SAMPLES\")}"
[ -n "$impls_err" ] && echo "# $impls_err"
for impl in "${impls[@]}"; do
	mdev_sample_installed "$impl" ||
		echo "# $impl is not installed for kernel $(uname -r) (modinfo $impl fails): its cells fail (MDEV_MTTY_IMPLS leaves it out)"
done

result() { # result <ok:0|1> <description>
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n $2"; else echo "not ok $n $2"; fi
}

if [ "$e2e_only" = 0 ]; then
# 0. KUnit ran at boot (CONFIG_KUNIT=y): the Rust `kernel` crate doctests
#    (suite rust_doctests_kernel) and every #[kunit_tests] suite.  Count the
#    test cases from the console: the KTAP result lines one level down (four
#    spaces), one per case of every suite ("# Totals:" lines are not enough:
#    KUnit prints none for a suite of one case).
#    A suite that fails as a whole (its init) prints only a "not ok" at
#    column 0: that counts as a failure too.
kunit=$(dmesg | sed -E 's/^\[[ 0-9.]+\] //' | awk '
	/^    (not )?ok [0-9]+ / {
		if ($0 ~ /# SKIP/) s++; else if ($1 == "not") f++; else p++; n++
	}
	/^not ok [0-9]+ / { f++; n++ }
	END { if (n) print p + 0, f + 0, s + 0 }')
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

# 0b. The compile-fail cases the host built before the boot
#     (scripts/compile-fail.sh: misuses of the safe API that the compiler
#     must refuse, and a control case that must build): their TAP file.
if [ "$e2e_only" = 0 ]; then
	cf=${MDEV_COMPILE_FAIL_TAP:-}
	if [ -n "$cf" ] && [ -s "$cf" ]; then
		cp_=$(grep -c '^ok ' "$cf")
		cf_=$(grep -c '^not ok ' "$cf")
		grep -E '^(not ok|#)' "$cf" | sed 's/^/# /'
		pass=$((pass + cp_))
		fail=$((fail + cf_))
		result "$cf_" "compile-fail: $cp_ cases as expected, $cf_ not"
	else
		fail=$((fail + 1))
		result 1 "compile-fail: no results (MDEV_COMPILE_FAIL_TAP=${cf:-unset})"
	fi
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

# 1b. "make demo", the first thing a newcomer runs, on the default core:
#     exit status 0, the mdev shown and removed, everything unloaded.
# the display part of the demo runs as the display end to end below
demo_out=$(MDEV_DEMO_DISPLAY=0 "$(dirname "$0")/demo.sh" 2>&1)
demo_rc=$?
demo_left=$(mdev_all_unloaded)
# whatever the demo left behind must not spoil the cells that follow
mdev_unload_all >/dev/null
demo_ok=1
if [ "$demo_rc" = 0 ] && printf '%s\n' "$demo_out" | grep -qx 'demo done' &&
	printf '%s\n' "$demo_out" | grep -qE '^driver      -> [[:alnum:]_-]+$' &&
	[ -z "$demo_left" ]; then
	demo_ok=0
	pass=$((pass + 1))
else
	printf '%s\n' "$demo_out" | tail -n 30 | sed 's/^/# demo: /'
	echo "# demo.sh exited $demo_rc${demo_left:+; left loaded: $demo_left}"
	fail=$((fail + 1))
fi
result $demo_ok "demo: make demo's script exits 0, shows the mdev and its driver, unloads everything"

# 1c. The VM has the emulated PCI devices vm-run.sh was asked for: each
#     "edu[,...]" is a PCI device 1234:11e8 (QEMU's edu), no driver bound.
if [ ${#vm_devices[@]} -gt 0 ]; then
	want_edu=0 have_edu=0 bound=
	for d in "${vm_devices[@]}"; do [[ $d == edu || $d == edu,* ]] && want_edu=$((want_edu + 1)); done
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11e8 ] || continue
		have_edu=$((have_edu + 1))
		[ -e "$d/driver" ] && bound+=" $(basename "$d")"
	done
	dev_ok=1
	[ "$have_edu" = "$want_edu" ] && [ -z "$bound" ] && dev_ok=0
	if [ "$dev_ok" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
	result $dev_ok "VM devices (${vm_devices[*]}): $have_edu PCI devices 1234:11e8 (want $want_edu)${bound:+, bound:$bound}"
fi
fi

# 2. Per core: load it with the samples, run every kselftest program, unload.
run_prog() { # run_prog <program> <label> [args...]
	local p=$1 label=$2 out rc totals tp tf ts te
	shift 2
	echo "# selftests: vfio-mdev: $label"
	out=$(mktemp)
	(cd "$dir" && "./$p" "$@") >"$out" 2>&1
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
		n=$((n + 1)); echo "ok $n selftests: vfio-mdev: $label # SKIP"
	else
		result "$rc" "selftests: vfio-mdev: $label"
	fi
	rm -f "$out"
}

samples_all=$MDEV_SAMPLES
for core in "${cores[@]}"; do
	for impl in "${cell_impls[@]}"; do
		t0=$SECONDS
		MDEV_CORE=$core
		MDEV_SAMPLES=$samples_all
		label="core=$core"
		if [ -n "$impl" ]; then
			MDEV_SAMPLES=$(mdev_samples_with_mtty "$impl" "$samples_all")
			label="$label mtty=$impl"
		fi
		if [ -z "$impls_err" ] && out=$(mdev_load 2>&1); then
			[ -n "$out" ] && sed 's/^/# /' <<<"$out"
			pass=$((pass + 1))
			result 0 "load core=$core samples=$MDEV_SAMPLES"
			for p in "${progs[@]}"; do
				run_prog "$p" "$p [$label]"
			done
		else
			sed 's/^/# /' <<<"${impls_err:-$out}"
			fail=$((fail + 1))
			result 1 "load core=$core samples=$MDEV_SAMPLES"
			for p in "${progs[@]}"; do
				fail=$((fail + 1))
				result 1 "selftests: vfio-mdev: $p [$label]: not run, the core and samples did not load"
			done
		fi
		mdev_unload
		# the next cell must find nothing loaded
		mdev_all_unloaded || echo "# ... after unloading core=$core samples=$MDEV_SAMPLES"
		echo "# [$label] took $((SECONDS - t0)) s"
	done
done
MDEV_SAMPLES=$samples_all

# 2b. The mdma DMA engine (pinned guest pages, type1 and iommufd) per core.
#     On a lockdep kernel only the iommufd variant runs: type1 itself calls
#     dma_unmap with its device_list_lock held, and the unpin that the
#     callback must do takes iommu->lock, which type1 holds while taking
#     device_list_lock (vfio_iommu_type1_register_device): an upstream ABBA
#     that lockdep reports for every driver that unpins, after which lockdep
#     is off for the rest of the run.
# parent_unbind and parent_remove need a PCI parent: edu-test.sh runs them.
dma_args=(-T parent_unbind -T parent_remove)
if [ -e /proc/lockdep ] && [ ${#dma_progs[@]} -gt 0 ]; then
	dma_args+=(-v cdev)
	echo "# lockdep kernel: mdma_test runs its iommufd (cdev) variant only (upstream type1 lock order, see run-tests.sh)"
fi
if [ ${#dma_progs[@]} -gt 0 ]; then
	for core in "${cores[@]}"; do
		t0=$SECONDS
		MDEV_CORE=$core
		MDEV_SAMPLES=mdma
		if out=$(mdev_load 2>&1); then
			[ -n "$out" ] && sed 's/^/# /' <<<"$out"
			pass=$((pass + 1))
			result 0 "load core=$core samples=mdma"
			for p in "${dma_progs[@]}"; do
				run_prog "$p" "$p [core=$core]" "${dma_args[@]}"
			done
		else
			sed 's/^/# /' <<<"$out"
			fail=$((fail + 1))
			result 1 "load core=$core samples=mdma"
			for p in "${dma_progs[@]}"; do
				fail=$((fail + 1))
				result 1 "selftests: vfio-mdev: $p [core=$core]: not run, the core and mdma did not load"
			done
		fi
		mdev_unload
		mdev_all_unloaded || echo "# ... after unloading core=$core samples=mdma"
		echo "# [core=$core mdma] took $((SECONDS - t0)) s"
	done
	MDEV_SAMPLES=$samples_all
fi

# 2c. QEMU end to end: Debian's qemu-system-x86_64 opens the mtty mdev with
#     -device vfio-pci,sysfsdev=... (realize check), then boots a minimal
#     nested kernel whose 8250_pci driver loops bytes through both ports.
for r in "${e2e_runs[@]}"; do
	t0=$SECONDS
	core=${r%%:*} mod=${r#*:}
	if [ "$r" = cross:cross ]; then
		out=$("$(dirname "$0")/qemu-e2e.sh" --cross 2>&1)
	elif [ "$mod" = dma ]; then
		out=$(MDEV_E2E_CORES=$core "$(dirname "$0")/qemu-e2e.sh" --dma 2>&1)
	elif [ "$mod" = display ]; then
		out=$(MDEV_E2E_CORES=$core "$(dirname "$0")/qemu-e2e.sh" --display 2>&1)
	else
		out=$(MDEV_E2E_CORES=$core MDEV_MTTY_MODULE=$mod "$(dirname "$0")/qemu-e2e.sh" 2>&1)
	fi
	rc=$?
	sed 's/^/# /' <<<"$out"
	res=$(sed -nE 's/^RESULT: pass=([0-9]+) fail=([0-9]+) skip=([0-9]+).*/\1 \2 \3/p' <<<"$out" | tail -n1)
	if [ -n "$res" ]; then
		read -r ep ef es <<<"$res"
	else
		ep=0 ef=1 es=0
	fi
	# Required here: a skipped step (e.g. no nested kernel) fails.
	[ "$es" -gt 0 ] && echo "# qemu-e2e skipped $es checks: counted as failures (make nested builds the nested kernel)"
	pass=$((pass + ep)) fail=$((fail + ef + es))
	ok=1
	[ "$rc" = 0 ] && [ "$ef" = 0 ] && [ "$es" = 0 ] && [ "$ep" -gt 0 ] && ok=0
	what="core=$core mtty=$mod"
	[ "$r" = cross:cross ] && what="migration from mtty on mdev_c to mtty_rs on mdev"
	[ "$mod" = dma ] && what="live migration of a guest driving mdma (each backend), core=$core"
	[ "$mod" = display ] && what="the Rust mdpy's display: the nested guest's mdpy-fb picture in QEMU's screendump, core=$core"
	result $ok "qemu-e2e $what: pass=$ep fail=$ef skip=$es ($((SECONDS - t0)) s)"
done

# 3. Differential: the ABI dumps (mdev_dump) of every core and mtty
#    implementation, diffed: one TAP line per comparison.
if [ "$ncmp" -gt 0 ]; then
	t0=$SECONDS
	out=$(MDEV_DIFF_CORES="${cores[*]}" MDEV_MTTY_IMPLS="$impls_arg" \
		"$(dirname "$0")/differential.sh" 2>&1)
	rc=$?
	sed 's/^/# /' <<<"$out"
	echo "# differential took $((SECONDS - t0)) s"
	[ -n "$impls_err" ] && rc=1
	k=0
	while IFS= read -r line; do
		[ "$k" -lt "$ncmp" ] || break
		k=$((k + 1))
		what=${line#comparison }
		if [ -z "$impls_err" ] && [[ "$what" =~ :\ 0\ differences$ ]]; then
			pass=$((pass + 1))
			result 0 "differential $what"
		else
			fail=$((fail + 1))
			result 1 "differential $what"
		fi
	done < <(grep -E '^comparison ' <<<"$out")
	# a differential.sh that failed early leaves comparisons out
	for ((; k < ncmp; k++)); do
		fail=$((fail + 1))
		result 1 "differential: comparison $((k + 1)) of $ncmp not made (differential.sh exit $rc)"
	done
fi

# A script that checks every core itself and ends with "<name>: N passed,
# M failed": its checks count as test cases, and it is one TAP line.
run_checks() { # run_checks <name> <script> [args...]
	local name=$1 script=$2 out rc summary sp sf t0=$SECONDS
	shift 2
	out=$(MDEV_TEST_CORES="${cores[*]}" MDEV_MTTY_IMPLS="$impls_arg" \
		"$(dirname "$0")/$script" "$@" 2>&1)
	rc=$?
	sed 's/^/# /' <<<"$out"
	echo "# $name took $((SECONDS - t0)) s"
	summary=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed" <<<"$out" | tail -n1)
	sp=$(sed -nE "s/^$name: ([0-9]+) passed.*/\\1/p" <<<"$summary")
	sf=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$summary")
	pass=$((pass + ${sp:-0}))
	fail=$((fail + ${sf:-1}))
	[ "$rc" != 0 ] && [ "${sf:-0}" = 0 ] && fail=$((fail + 1))
	result "$rc" "${summary:-$name: no summary} (cores: ${cores[*]}${impls_arg:+; mtty: $impls_arg})"
}

# 3b. Unless MDEV_MISUSE=0: a safe Rust driver that keeps its VFIO
#     registrations past remove (samples/vfio-mdev/mdev_misuse.rs) cannot
#     leave a VFIO device registered on an unbound mdev (misuse.sh).
[ "${MDEV_MISUSE:-1}" = 1 ] && run_checks misuse misuse.sh

# 3b'. Unless MDEV_EDU=0: QEMU's edu device as a PCI mdev parent whose DMA
#     engine runs the mdma requests (edu-test.sh: mdma_test against it, the
#     shared engine, unbind and remove with open devices, a narrow mask).
[ "${MDEV_EDU:-1}" = 1 ] && run_checks edu edu-test.sh "$dir"

# 3c. When both mtty implementations are tested (or MDEV_MIGRATION=1; =0
#     leaves it out): a device state saved by the C mtty resumes on the Rust
#     mtty and back, with the modules swapped in between (migration.sh; the
#     in-cell migration tests are mdev_mig_test).
[ "$MDEV_MIGRATION" = 1 ] && run_checks migration migration.sh "$dir"

# 4. mdevctl end to end on every core and mtty implementation: types, start,
#    list, stop, define --auto and autostart by udev when the parent
#    registers; Debian's 1.2.0, then 1.4.0 from crates.io (scripts/setup.sh
#    installs it; MDEV_MDEVCTL14_BIN points elsewhere).
if [ "${MDEV_MDEVCTL:-1}" = 1 ]; then
	run_checks mdevctl mdevctl-test.sh
	run_checks mdevctl-1.4.0 mdevctl-test.sh --name mdevctl-1.4.0 --version 1.4.0 \
		--bin "${MDEV_MDEVCTL14_BIN:-/opt/mdev-rs/mdevctl-1.4.0/bin/mdevctl}"
fi

# 4b. Unless MDEV_LIBVIRT=0: libvirt 11.3 (libvirtd in the VM, mdevctl
#     1.4.0) lists, defines, starts, stops, autostarts and undefines mdevs on
#     every core and mtty implementation, and boots the nested guest in a
#     domain with an mdev hostdev (libvirt-test.sh).
[ "${MDEV_LIBVIRT:-1}" = 1 ] && run_checks libvirt libvirt-test.sh \
	--mdevctl "${MDEV_MDEVCTL14_BIN:-/opt/mdev-rs/mdevctl-1.4.0/bin/mdevctl}"

# 5. Unless MDEV_STRESS=0: concurrent create/remove while the
#    samples are unloaded and reloaded, then a kmemleak scan, per core and
#    mtty implementation.
[ "${MDEV_STRESS:-1}" = 1 ] && run_checks stress stress.sh

echo "RESULT: pass=$pass fail=$fail skip=$skip"
[ "$fail" = 0 ]
