# SPDX-License-Identifier: GPL-2.0
# Shared by the guest-side scripts: load the chosen mdev core and samples.
#
#   MDEV_CORE     which mdev core to load:
#                   mdev    the in-tree drivers/vfio/mdev module (default)
#                   mdev_c  the upstream C core built as the external module
#                           ext/mdev_c/mdev_c.ko (see Kbuild)
#                   none    load nothing
#   MDEV_SAMPLES  sample modules to load (default: "mtty mdpy mbochs");
#                 mtty_rs (the Rust mtty) can stand in for mtty, but not
#                 with it: both register the class, parent and driver "mtty"
#   MDEV_MTTY_IMPLS  the mtty implementations the test scripts go through,
#                 one after the other, in place of the mtty-compatible sample
#                 of MDEV_SAMPLES (default: "mtty mtty_rs", the C mtty first)
#
# For mdev_c, a modprobe "install" rule makes every "modprobe <sample>" load
# mdev_c.ko in place of mdev.ko, so tests that unload and reload samples with
# modprobe keep using the chosen core.

MDEV_CORE=${MDEV_CORE:-mdev}
MDEV_SAMPLES=${MDEV_SAMPLES-mtty mdpy mbochs}
MDEV_MTTY_IMPLS=${MDEV_MTTY_IMPLS-mtty mtty_rs}
export MDEV_CORE MDEV_SAMPLES MDEV_MTTY_IMPLS

# The samples that implement the mtty ABI (same class, parent and driver
# names, same expectations in the kselftests: mdev_common.c).
MDEV_MTTY_COMPAT="mtty mtty_rs"

# mdev_mtty_sample [samples]: prints the mtty-compatible sample of the list
# (default $MDEV_SAMPLES), nothing if there is none; fails with a message on
# stderr if it lists more than one.
mdev_mtty_sample() {
	local s m found= list=${1-$MDEV_SAMPLES}
	for s in ${list//,/ }; do
		for m in $MDEV_MTTY_COMPAT; do
			[ "$s" = "$m" ] || continue
			if [ -n "$found" ] && [ "$found" != "$s" ]; then
				echo "MDEV_SAMPLES=\"$list\" lists both $found and $s: they implement the same mtty parent (class, parent and driver \"mtty\") and cannot be loaded together; list one of them" >&2
				return 1
			fi
			found=$s
		done
	done
	echo "$found"
}

# The Rust ports of the C samples besides mtty_rs, "<C sample>:<port>": each
# registers the same class, parent, driver and types as its C sample (the
# kselftests share their expectations, "compat" in mdev_common.c), so one of
# the two can be loaded at a time.  The pass of a test script with the Rust
# mtty uses every port, the pass with the C mtty the C samples.
MDEV_RUST_PORTS="mdpy:mdpy_rs mbochs:mbochs_rs"

# mdev_samples_with_mtty <impl> [samples]: the list (default $MDEV_SAMPLES)
# with its mtty-compatible sample replaced by <impl>, and, for the Rust mtty
# (mtty_rs), every C sample of MDEV_RUST_PORTS by its Rust port (for the C
# mtty, every port by its C sample); unchanged if it has no mtty.
mdev_samples_with_mtty() {
	local impl=$1 s m p out= list=${2-$MDEV_SAMPLES} has=0
	for s in ${list//,/ }; do
		for m in $MDEV_MTTY_COMPAT; do
			[ "$s" = "$m" ] && has=1
		done
	done
	for s in ${list//,/ }; do
		for m in $MDEV_MTTY_COMPAT; do
			[ "$s" = "$m" ] && s=$impl
		done
		if [ $has = 1 ]; then
			for p in $MDEV_RUST_PORTS; do
				if [ "$impl" = mtty_rs ] && [ "$s" = "${p%%:*}" ]; then
					s=${p#*:}
				elif [ "$impl" != mtty_rs ] && [ "$s" = "${p#*:}" ]; then
					s=${p%%:*}
				fi
			done
		fi
		out="$out $s"
	done
	echo "${out# }"
}

# mdev_mtty_impls: the mtty implementations a test script goes through for
# MDEV_SAMPLES: MDEV_MTTY_IMPLS (validated; if empty, the one MDEV_SAMPLES
# lists), or nothing when MDEV_SAMPLES lists no mtty-compatible sample (or
# two: mdev_load rejects that): then MDEV_SAMPLES is used as it is.
mdev_mtty_impls() {
	local listed impl
	listed=$(mdev_mtty_sample 2>/dev/null) || return 0
	[ -n "$listed" ] || return 0
	for impl in $MDEV_MTTY_IMPLS; do
		case " $MDEV_MTTY_COMPAT " in
		*" $impl "*) ;;
		*)
			echo "MDEV_MTTY_IMPLS=\"$MDEV_MTTY_IMPLS\": $impl is not an mtty implementation ($MDEV_MTTY_COMPAT)" >&2
			return 1
			;;
		esac
	done
	echo "${MDEV_MTTY_IMPLS:-$listed}"
}

# mdev_sample_installed <module>: modinfo finds it for the running kernel
mdev_sample_installed() {
	modinfo -F name "$1" >/dev/null 2>&1
}

mdev_core_select() {
	local conf=/etc/modprobe.d/mdev-rs-core.conf
	case "$MDEV_CORE" in
	mdev | none)
		rm -f "$conf"
		;;
	mdev_c)
		local ko=${MDEV_RS_OBJ:?}/ext/mdev_c/mdev_c.ko
		[ -f "$ko" ] || { echo "no $ko (make ext-modules)" >&2; return 1; }
		mkdir -p /etc/modprobe.d
		# idempotent: every "modprobe <sample>" runs it for the dependency
		echo "install mdev [ -d /sys/module/mdev_c ] || /sbin/insmod $ko" > "$conf"
		;;
	*)
		echo "unknown MDEV_CORE=$MDEV_CORE (mdev, mdev_c, none)" >&2
		return 1
		;;
	esac
}

mdev_load() {
	local s m
	mdev_mtty_sample >/dev/null || return 1
	mdev_core_select || return 1
	[ "$MDEV_CORE" = none ] && return 0
	for s in $MDEV_SAMPLES; do
		mdev_sample_installed "$s" || {
			echo "sample $s is not installed for kernel $(uname -r) (modinfo $s fails: is $s.ko built?)" >&2
			return 1
		}
	done
	modprobe mdev || { echo "cannot load the mdev core $MDEV_CORE" >&2; return 1; }
	for s in $MDEV_SAMPLES; do
		case " $MDEV_MTTY_COMPAT " in
		*" $s "*)
			local m
			for m in $MDEV_MTTY_COMPAT; do
				[ "$m" != "$s" ] && [ -d "/sys/module/$m" ] && {
					echo "cannot load sample $s: module $m is loaded (it registers the same mtty class and driver)" >&2
					return 1
				}
			done
			;;
		esac
		for m in $MDEV_RUST_PORTS; do
			local c=${m%%:*} r=${m#*:} o=
			[ "$s" = "$c" ] && o=$r
			[ "$s" = "$r" ] && o=$c
			[ -n "$o" ] && [ -d "/sys/module/$o" ] && {
				echo "cannot load sample $s: module $o is loaded (it registers the same $c class and driver)" >&2
				return 1
			}
		done
		modprobe "$s" || { echo "cannot load sample $s" >&2; return 1; }
	done
	# exactly the chosen core serves the samples
	local other=mdev_c
	[ "$MDEV_CORE" = mdev_c ] && other=mdev
	[ -d "/sys/module/$MDEV_CORE" ] && [ ! -d "/sys/module/$other" ] ||
		{ echo "core $MDEV_CORE not loaded (or $other loaded too)" >&2; return 1; }
}

mdev_unload() {
	for s in $MDEV_SAMPLES; do
		modprobe -r "$s" 2>/dev/null
	done
	# "modprobe -r <sample>" also unloads the core once nothing uses it
	if [ "$MDEV_CORE" != none ] && [ -d "/sys/module/$MDEV_CORE" ]; then
		rmmod "$MDEV_CORE" 2>/dev/null || true
	fi
	return 0
}

# TAP lines for the scripts that count their own checks (in the globals n,
# pass and fail) and print their own summary:
#   tap_result <status> <description>   records a status (0: ok), returns it
#   tap_check <description> <command...> runs the command and records it
tap_result() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		pass=$((pass + 1)); echo "ok $n - $2"
	else
		fail=$((fail + 1)); echo "not ok $n - $2"
	fi
	[ "$1" = 0 ]
}
tap_check() {
	local d=$1
	shift
	"$@"
	tap_result $? "$d"
}

# mdev_cells: "<core> <mtty>" for each core of the array "cores" and each
# mtty implementation of the array "impls", one per line.
mdev_cells() {
	local c i
	for c in "${cores[@]}"; do
		for i in "${impls[@]}"; do
			echo "$c $i"
		done
	done
}

# udevd_up: systemd-udevd runs (virtme-ng-init starts it; if it is not
# there, start it and replay the devices' add events); returns whether it
# answers.
udevd_up() {
	if ! udevadm control --ping >/dev/null 2>&1; then
		echo "# systemd-udevd is not running: starting it"
		/lib/systemd/systemd-udevd --daemon
		sleep 1
		udevadm trigger --action=add >/dev/null 2>&1
		udevadm settle --timeout=60
	fi
	udevadm control --ping >/dev/null 2>&1
}

# edu_functions: "<PCI address> <DMA mask bits>" of each QEMU edu function
# (1234:11e8), in slot order, paired with the edu specs of
# MDEV_RS_VM_DEVICES in their order (vm-run.sh adds them in that order and
# QEMU gives them increasing slots); bits 0 for a function that cannot be
# paired: more functions than specs, or specs that choose their slot
# ("addr="), whose order is then not the slots'.
edu_functions() {
	local d spec mask b i=0
	local -a bits=() fns=()
	for spec in ${MDEV_RS_VM_DEVICES:-}; do
		case "$spec" in
		edu,*addr=*)
			bits+=(0)
			;;
		edu | edu,*)
			mask=$(sed -nE 's/.*dma_mask=(0x[0-9a-fA-F]+|[0-9]+).*/\1/p' <<<"$spec")
			mask=$((${mask:-0xfffffff}))
			b=0
			while [ "$b" -lt 64 ] && [ $((mask >> b)) -ne 0 ]; do b=$((b + 1)); done
			bits+=("$b")
			;;
		esac
	done
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11e8 ] &&
			fns+=("${d##*/}")
	done
	for d in $(printf '%s\n' "${fns[@]}" | sort); do
		echo "$d ${bits[$i]:-0}"
		i=$((i + 1))
	done
}

# edu_only <address>: only that edu function may bind (driver_override
# "none" on the others); edu_only "" lets every one bind again.
edu_only() {
	local d
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11e8 ] || continue
		if [ -z "$1" ] || [ "${d##*/}" = "$1" ]; then
			echo > "$d/driver_override"
		else
			echo none > "$d/driver_override"
		fi
	done
}

# Every sample a script may have loaded.
MDEV_ALL_SAMPLES="mtty mtty_rs mdpy mdpy_rs mbochs mbochs_rs mdma mdma_edu mdev_misuse"

# Returns 0 when no core and no sample is loaded; names what still is.
mdev_all_unloaded() {
	local m ok=0
	for m in mdev mdev_c $MDEV_ALL_SAMPLES $MDEV_SAMPLES; do
		[ -d "/sys/module/$m" ] && { echo "# module $m still loaded"; ok=1; }
	done
	return $ok
}

# Unloads every sample and both cores, whatever loaded them, so that the
# next core can load; fails if something stays.
mdev_unload_all() {
	local c
	for c in mdev mdev_c; do
		MDEV_CORE=$c MDEV_SAMPLES="$MDEV_ALL_SAMPLES $MDEV_SAMPLES" mdev_unload
	done
	mdev_all_unloaded
}
