# SPDX-License-Identifier: GPL-2.0
# Shared by the guest-side scripts: load the chosen mdev core and samples.
#
#   MDEV_CORE     which mdev core to load:
#                   mdev    the in-tree drivers/vfio/mdev module (default)
#                   mdev_c  the upstream C core built as the external module
#                           ext/mdev_c/mdev_c.ko (see Kbuild)
#                   none    load nothing
#   MDEV_SAMPLES  sample modules to load (default: "mtty mdpy mbochs")
#
# For mdev_c, a modprobe "install" rule makes every "modprobe <sample>" load
# mdev_c.ko in place of mdev.ko, so tests that unload and reload samples with
# modprobe keep using the chosen core.

MDEV_CORE=${MDEV_CORE:-mdev}
MDEV_SAMPLES=${MDEV_SAMPLES-mtty mdpy mbochs}
export MDEV_CORE MDEV_SAMPLES

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
	mdev_core_select || return 1
	[ "$MDEV_CORE" = none ] && return 0
	modprobe mdev || { echo "cannot load the mdev core $MDEV_CORE" >&2; return 1; }
	for s in $MDEV_SAMPLES; do
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
	[ "$MDEV_CORE" = none ] || rmmod "$MDEV_CORE" 2>/dev/null
	return 0
}

# Every sample a script may have loaded.
MDEV_ALL_SAMPLES="mtty mdpy mbochs"

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
