# SPDX-License-Identifier: GPL-2.0
# Shared by the guest-side scripts: load the chosen mdev core and samples.
#
#   MDEV_CORE     module name of the mdev core to load (default: mdev, the
#                 upstream C core); "none" loads nothing
#   MDEV_SAMPLES  sample modules to load (default: "mtty mdpy mbochs")

MDEV_CORE=${MDEV_CORE:-mdev}
MDEV_SAMPLES=${MDEV_SAMPLES-mtty mdpy mbochs}
export MDEV_CORE MDEV_SAMPLES

mdev_load() {
	[ "$MDEV_CORE" = none ] && return 0
	modprobe "$MDEV_CORE" || { echo "cannot load the mdev core $MDEV_CORE" >&2; return 1; }
	for s in $MDEV_SAMPLES; do
		modprobe "$s" || { echo "cannot load sample $s" >&2; return 1; }
	done
}

mdev_unload() {
	for s in $MDEV_SAMPLES; do
		modprobe -r "$s" 2>/dev/null
	done
	[ "$MDEV_CORE" = none ] || modprobe -r "$MDEV_CORE" 2>/dev/null
	return 0
}
