#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of "make demo": what a newcomer does with mdev, step by step.
# MDEV_DEMO_SAMPLE chooses the sample (default mtty; mtty_rs: the Rust mtty,
# the same parent "mtty" and types; mdpy, mbochs, mdpy_rs, mbochs_rs).  It
# ends with the display of the Rust mdpy in QEMU, kept as a PNG
# (MDEV_DEMO_DISPLAY=0 leaves it out).
. "$(dirname "$0")/lib.sh"
set -e
MDEV_SAMPLES=${MDEV_DEMO_SAMPLE:-mtty}

step() { printf '\n\033[1m### %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "Load the mdev core ($MDEV_CORE) and the $MDEV_SAMPLES sample"
mdev_load
run lsmod

step "The parent device and its supported types"
run ls -l /sys/class/mdev_bus/
parent=$(ls /sys/class/mdev_bus/ | head -n1)
types=/sys/class/mdev_bus/$parent/mdev_supported_types
for t in "$types"/*; do
	printf '%s:\n' "$(basename "$t")"
	for f in name device_api available_instances description class fb_length resolution heads; do
		[ -e "$t/$f" ] && printf '  %-20s %s\n' "$f" "$(cat "$t/$f")"
	done
done
type=$(ls "$types" | tail -n1)

uuid=$(cat /proc/sys/kernel/random/uuid)
step "Create an mdev of type $type"
run sh -c "echo $uuid > $types/$type/create"
run ls -l /sys/bus/mdev/devices/
dev=/sys/bus/mdev/devices/$uuid
run ls -l "$dev/"
printf 'mdev_type   -> %s\n' "$(basename "$(readlink "$dev/mdev_type")")"
group=$(basename "$(readlink "$dev/iommu_group")")
printf 'iommu_group -> %s (name: %s), device node: %s\n' "$group" \
	"$(cat /sys/kernel/iommu_groups/"$group"/name 2>/dev/null)" "$(ls /dev/vfio/"$group")"
printf 'subsystem   -> %s\n' "$(realpath "$dev/subsystem")"
printf 'driver      -> %s\n' "$(basename "$(readlink "$dev/driver")")"
[ -e "$dev/vendor/sample_mdev_dev" ] && run cat "$dev/vendor/sample_mdev_dev"
printf 'available_instances of %s now: %s\n' "$type" "$(cat "$types/$type/available_instances")"

step "What mdevctl sees"
run mdevctl types
run mdevctl list

step "Remove the mdev"
run sh -c "echo 1 > $dev/remove"
run ls /sys/bus/mdev/devices/
printf 'available_instances of %s now: %s\n' "$type" "$(cat "$types/$type/available_instances")"
run mdevctl list
step "Unload the sample and the core"
mdev_unload
mdev_all_unloaded

# A picture through a display mdev (MDEV_DEMO_DISPLAY=0 leaves it out): the
# Rust mdpy on this core, QEMU with -device vfio-pci,...,display=on, a nested
# guest whose mdpy-fb driver draws on /dev/fb0, QEMU's screendump as a PNG.
if [ "${MDEV_DEMO_DISPLAY:-1}" != 0 ]; then
	step "A display: the Rust mdpy in QEMU, the nested guest's picture as a PNG"
	MDEV_E2E_CORES=$MDEV_CORE "$(dirname "$0")/qemu-e2e.sh" --display | grep -v '^# '
	printf 'picture: %s (on the host: build/logs/)\n' \
		"${MDEV_RS_LOGDIR:-/tmp}/mdpy-screendump-$MDEV_CORE.png"
fi
echo
echo "demo done"
