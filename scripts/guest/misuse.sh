#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of the misuse test: samples/vfio-mdev/mdev_misuse.rs is a vendor
# driver in safe Rust that keeps every vfio::Registration it creates in its
# parent data, past the mdev's remove.  The VFIO core uses the parent's
# driver while a VFIO device is registered (the first open takes a reference
# on device->dev->driver->owner), so a registration left behind on an unbound
# mdev would oops at the next open.  The abstraction must unregister it at
# unbind.  For every core in MDEV_TEST_CORES (default "mdev_c mdev"):
#
#   - create an mdev: its VFIO group (/dev/vfio/<group>) and cdev appear;
#   - remove it: the mdev is gone, and so is its VFIO group, although the
#     driver still holds the registration;
#   - create two more, remove one, unload the driver with the other present
#     and both registrations kept: the module and the core unload.
#
# Prints "ok|not ok N - ..." per check and "misuse: N passed, M failed";
# exits 0 only if all passed.  Kernel reports fail the run (vm-run.sh).

. "$(dirname "$0")/lib.sh"

read -ra cores <<<"${MDEV_TEST_CORES:-mdev_c mdev}"
pass=0 fail=0 n=0

type_dir=/sys/class/mdev_bus/mdev_misuse/mdev_supported_types/mdev_misuse_class-keep
create() { echo "$1" > "$type_dir/create"; }
remove() { echo 1 > "/sys/bus/mdev/devices/$1/remove"; }
group_of() { basename "$(readlink "/sys/bus/mdev/devices/$1/iommu_group")"; }
cdev_of() { # the VFIO device cdev of an mdev (vfioN)
	local d
	for d in "/sys/bus/mdev/devices/$1"/vfio-dev/vfio*; do
		[ -e "$d" ] && basename "$d"
	done
}
has_vfio() { # has_vfio <group> <cdev>: the VFIO group node and the device cdev exist
	[ -c "/dev/vfio/$1" ] && [ -n "$2" ] && [ -c "/dev/vfio/devices/$2" ]
}
gone() { # gone <uuid> <group> <cdev>: neither the mdev nor its VFIO group or cdev is left
	# (within 10 s: with DEBUG_KOBJECT_RELEASE the group's release comes 1-3 s late)
	local i
	for i in $(seq 100); do
		[ ! -e "/sys/bus/mdev/devices/$1" ] && [ ! -e "/dev/vfio/$2" ] &&
			[ ! -e "/sys/kernel/iommu_groups/$2" ] && [ ! -e "/dev/vfio/devices/$3" ] &&
			return 0
		sleep 0.1
	done
	return 1
}
# The parent (device mdev_misuse, class mdev_misuse_class) printed through after its class
# was unregistered: "<class> <device>: ...", so the class's name was still readable.
late_msg='mdev_misuse_class mdev_misuse: kept past its class'
late_mark() { echo "misuse.sh: mark $1" > /dev/kmsg; }
late_printed() { # late_printed <mark>: the line, once, after the mark
	[ "$(dmesg | sed -n "/misuse.sh: mark $1\$/,\$p" | grep -c "$late_msg")" -eq 1 ]
}
open_fails() { # the group node cannot be opened any more
	! (exec 3<"/dev/vfio/$1") 2>/dev/null
}

for core in "${cores[@]}"; do
	MDEV_CORE=$core
	MDEV_SAMPLES=mdev_misuse
	if ! out=$(mdev_load 2>&1); then
		sed 's/^/# /' <<<"$out"
		tap_check "[$core] load the core and mdev_misuse" false
		mdev_unload_all >/dev/null
		continue
	fi
	tap_check "[$core] load the core and mdev_misuse" true
	a=$(cat /proc/sys/kernel/random/uuid)
	b=$(cat /proc/sys/kernel/random/uuid)
	c=$(cat /proc/sys/kernel/random/uuid)
	tap_check "[$core] create an mdev" create "$a"
	ga=$(group_of "$a")
	ca=$(cdev_of "$a")
	tap_check "[$core] its VFIO group $ga and cdev $ca exist" has_vfio "$ga" "$ca"
	tap_check "[$core] remove it" remove "$a"
	udevadm settle 2>/dev/null
	tap_check "[$core] the mdev and its VFIO group are gone although the driver keeps the registration" \
		gone "$a" "$ga" "$ca"
	tap_check "[$core] the old group node cannot be opened" open_fails "$ga"
	tap_check "[$core] create two more" eval 'create "$b" && create "$c"'
	gb=$(group_of "$b")
	cb=$(cdev_of "$b")
	tap_check "[$core] remove one of them" remove "$b"
	udevadm settle 2>/dev/null
	tap_check "[$core] its VFIO group and cdev are gone" gone "$b" "$gb" "$cb"
	tap_check "[$core] a kept registration keeps its mdev's UUID taken (documented): EEXIST" \
		eval '! create "$a" 2>/dev/null'
	late_mark "$core"
	tap_check "[$core] unload mdev_misuse with an mdev present and 3 registrations kept" \
		modprobe -r mdev_misuse
	tap_check "[$core] its parent, referenced past its class, printed with the class name" \
		late_printed "$core"
	tap_check "[$core] the mdev went with the parent" test ! -e "/sys/bus/mdev/devices/$c"
	mdev_unload
	tap_check "[$core] everything unloads" mdev_all_unloaded
	mdev_unload_all >/dev/null
done
echo "misuse: $pass passed, $fail failed"
[ "$fail" = 0 ]
