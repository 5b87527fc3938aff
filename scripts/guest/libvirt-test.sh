#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# libvirt end to end, run inside the test VM: a libvirtd (11.3 from
# bookworm-backports, the host root's) runs in the guest as a host's would
# (root, udev, mdevctl), and for each mdev core in MDEV_TEST_CORES (default
# "mdev_c mdev") and each mtty implementation in MDEV_MTTY_IMPLS (default
# "mtty mtty_rs", see lib.sh) the script loads the core with that mtty and
# drives libvirt's node device API through virsh:
#   - nodedev-list --cap mdev_types lists the parent (mtty_mtty), and its
#     nodedev-dumpxml shows every type with the id, name, device API and
#     available instances that sysfs has;
#   - nodedev-define of an mdev from XML (libvirt runs mdevctl define),
#     nodedev-start, nodedev-list --cap mdev, the mdev's nodedev-dumpxml
#     (type, UUID, IOMMU group, parent, sysfs path, driver against sysfs),
#     nodedev-destroy, nodedev-autostart and the autostart by udev when the
#     mtty module is reloaded (Debian's 60-mdevctl.rules runs mdevctl
#     start-parent-mdevs), nodedev-undefine;
#   - errors: starting an active device, a duplicate UUID, an exhausted
#     type (mdevctl's own checks refuse them first: their messages), and the
#     same two with mdevctl's checks raced (a concurrent creator wins
#     between mdevctl's check and its write to "create"; simulated by
#     bind-mounting a stale available_instances, or an empty folder over
#     /sys/bus/mdev/devices, for the one command): the kernel's errno text
#     ("No space left on device", "File exists") reaches virsh's message.
#     After each error nothing is left: the same mdevs in sysfs, the same
#     available instances, no new node device, no new mdevctl definition;
#   - for the cells of MDEV_LIBVIRT_DOMAIN_CELLS (default "mdev_c/mtty
#     mdev/mtty_rs"): a domain with <hostdev type='mdev' model='vfio-pci'>
#     (QEMU 10, TCG) boots the nested test guest (the kernel and initramfs
#     of scripts/nested-build.sh in MDEV_E2E_DIR), whose /init loops bytes
#     through both mtty ports in rounds; nodedev-destroy of the assigned
#     mdev is refused while the domain runs; virsh destroy stops QEMU and
#     releases the device, which nodedev-destroy then removes.
# mdevctl is the one of --mdevctl (default: the 1.4.0 that scripts/setup.sh
# builds; bind-mounted over /usr/bin/mdevctl for the run, like
# mdevctl-test.sh --bin).  Prints TAP, then "libvirt: N passed, M failed";
# exits 0 only if everything passed.  Removes what it created, stops
# libvirtd and unloads, also on failure.
#
#   vm-run.sh --kernel build/obj-default -- scripts/guest/libvirt-test.sh
#
# It writes /etc/libvirt/qemu.conf and /etc/mdevctl.d (the VM's /etc is a
# tmpfs overlay), so outside the VM (MDEV_RS_VM unset) it refuses to run.
#
# Environment (vm-run.sh forwards MDEV_* only): MDEV_E2E_DIR (nested
# kernel), MDEV_E2E_TIMEOUT (seconds the nested guest may take to reach its
# second round, 300), MDEV_LIBVIRT_TIMEOUT (seconds libvirt may take to see
# a udev change, 30).

. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
mdevctl_bin=/opt/mdev-rs/mdevctl-1.4.0/bin/mdevctl mdevctl_version=1.4.0
while [ $# -gt 0 ]; do
	[ $# -ge 2 ] || { echo "libvirt-test: $1 needs a value" >&2; exit 2; }
	case "$1" in
	--mdevctl) mdevctl_bin=$2; shift 2 ;;
	--mdevctl-version) mdevctl_version=$2; shift 2 ;;
	*) echo "libvirt-test: unknown argument $1" >&2; exit 2 ;;
	esac
done

if [ "${MDEV_RS_VM:-}" != 1 ]; then
	echo "libvirt-test: meant for the test VM (writes /etc, runs libvirtd)" >&2
	exit 2
fi

read -ra cores <<<"${MDEV_TEST_CORES:-mdev_c mdev}"
impls_str=$(MDEV_SAMPLES=mtty mdev_mtty_impls 2>&1) ||
	{ echo "# $impls_str"; echo "libvirt: 0 passed, 1 failed"; exit 1; }
read -ra impls <<<"$impls_str"
domain_cells=${MDEV_LIBVIRT_DOMAIN_CELLS-default}
nested_dir=${MDEV_E2E_DIR:-$repo/build/nested}
nested_kernel=$nested_dir/obj/vmlinux
nested_initrd=$nested_dir/initramfs.cpio
boot_timeout=${MDEV_E2E_TIMEOUT:-300}
lv_timeout=${MDEV_LIBVIRT_TIMEOUT:-30}
logdir=${MDEV_RS_LOGDIR:-/tmp}

U1=83b8f4f2-509f-382f-3c1e-e6bfe0fa4001 # defined, started, autostarted
U2=83b8f4f2-509f-382f-3c1e-e6bfe0fa4002 # never created (errors)
U3=83b8f4f2-509f-382f-3c1e-e6bfe0fa4003 # assigned to the domain
FILL=83b8f4f2-509f-382f-3c1e-e6bfe0fa41 # + 2 digits: exhaust the type
DEVS=/sys/bus/mdev/devices
TYPES=/sys/class/mdev_bus/mtty/mdev_supported_types
CONF=/etc/mdevctl.d
PARENT_NODE=mtty_mtty
DOMAIN=mdev-rs-nested
node_of() { echo "mdev_${1//-/_}_mtty"; } # libvirt's name for an mtty mdev

tmp=$(mktemp -d)
n=0 pass=0 fail=0
bound= lvpid= lvlog=

diag() { awk '{ print "# " $0 }'; }

# v <virsh args>: stdout in $out, stderr in $err (one line), exit code in $rc
v() {
	out=$(virsh -c qemu:///system "$@" 2>"$tmp/err")
	rc=$?
	err=$(tr '\n' ' ' <"$tmp/err" | sed 's/  */ /g; s/ $//')
	return $rc
}
show() { { echo "\$ virsh $*  (exit $rc)"; [ -n "$out" ] && echo "$out"; [ -n "$err" ] && echo "stderr: $err"; } | diag; }

dev_list() { ls "$DEVS" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
dev_type() { basename "$(readlink "$DEVS/$1/mdev_type" 2>/dev/null)"; }
dev_parent() { basename "$(dirname "$(realpath "$DEVS/$1" 2>/dev/null)")"; }
avail() { cat "$TYPES/$1/available_instances" 2>/dev/null; }
# the mdev node devices libvirt lists, or "virsh-failed" (never a valid list)
mdev_nodes() {
	local o
	o=$(virsh -c qemu:///system nodedev-list --cap mdev "$@" 2>/dev/null) || { echo virsh-failed; return 1; }
	grep -v '^$' <<<"$o" | sort | tr '\n' ' ' | sed 's/ $//'
}
conf_list() { ls "$CONF/mtty" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
info_of() { virsh -c qemu:///system nodedev-info "$1" 2>/dev/null | sed -nE "s/^$2: +//p"; }

# wait_for <seconds> <command...>: until the command succeeds
wait_for() {
	local s=$1 i
	shift
	for i in $(seq $((s * 4))); do
		"$@" && return 0
		sleep 0.25
	done
	"$@"
}

# The facts of a node device's XML, one per line, from stdin.
xml_facts() {
	python3 -c '
import sys, xml.etree.ElementTree as ET
d = ET.fromstring(sys.stdin.read())
t = lambda e, p: (e.findtext(p) or "").strip()
print("name " + t(d, "name"))
print("path " + t(d, "path"))
print("parent " + t(d, "parent"))
print("driver " + t(d, "driver/name"))
for cap in d.findall("capability"):
    if cap.get("type") == "mdev_types":
        for ty in cap.iter("type"):
            print("type %s|%s|%s|%s" % (ty.get("id"), t(ty, "name"), t(ty, "deviceAPI"), t(ty, "availableInstances")))
    elif cap.get("type") == "mdev":
        ty = cap.find("type")
        g = cap.find("iommuGroup")
        print("mdev_type " + (ty.get("id") if ty is not None else ""))
        print("uuid " + t(cap, "uuid"))
        print("parent_addr " + t(cap, "parent_addr"))
        print("iommuGroup " + (g.get("number") if g is not None else ""))
'
}
# What the parent's XML must say, from sysfs.
parent_facts_sysfs() {
	local ty
	echo "name $PARENT_NODE"
	echo "path $(realpath /sys/class/mdev_bus/mtty)"
	echo "parent computer"
	echo "driver "
	for ty in "$TYPES"/*/; do
		ty=${ty%/}
		echo "type $(basename "$ty")|$(cat "$ty/name" 2>/dev/null)|$(cat "$ty/device_api")|$(cat "$ty/available_instances")"
	done
}
# What an active mdev's XML must say, from sysfs.
mdev_facts_sysfs() { # <uuid>
	local d=$DEVS/$1
	echo "name $(node_of "$1")"
	echo "path $(realpath "$d")"
	echo "parent $PARENT_NODE"
	echo "driver $(basename "$(readlink "$d/driver")")"
	echo "mdev_type $(dev_type "$1")"
	echo "uuid $1"
	echo "parent_addr $(dev_parent "$1")"
	echo "iommuGroup $(basename "$(readlink "$d/iommu_group")")"
}

mdev_xml() { # mdev_xml <uuid> <type>: an mdev node device for mtty
	printf "<device>\n  <parent>%s</parent>\n  <capability type='mdev'>\n    <type id='%s'/>\n    <uuid>%s</uuid>\n  </capability>\n</device>\n" \
		"$PARENT_NODE" "$2" "$1"
}

state() { echo "devices '$(dev_list)', mtty-2 available $(avail mtty-2), node devices '$(mdev_nodes --all)', definitions '$(conf_list)'"; }

# error_result <description> <expected text> <state before>: the last virsh
# command ($rc, $err) failed with the text in its message, and a second
# after udev settled (libvirt handles uevents in its own thread) nothing
# changed.  The states come from the real sysfs: a race faked with a bind
# mount must be undone before.
error_result() {
	local after
	udevadm settle --timeout=10
	sleep 1
	after=$(state)
	[ "$rc" != 0 ] && [[ $err == *"$2"* ]] && [ "$after" = "$3" ]
	tap_result $? "$1: exit $rc, '$err'; nothing changed ($after)"
	[ "$after" = "$3" ] || echo "before: $3" | diag
}
# check_error <description> <expected text> <virsh args...>
check_error() {
	local desc=$1 want=$2 before
	shift 2
	before=$(state)
	v "$@"
	error_result "$desc" "$want" "$before"
}

remove_all() { # every mdev of the mtty parent, by sysfs
	local d
	for d in "$DEVS"/*; do
		[ -e "$d/remove" ] && echo 1 >"$d/remove" 2>/dev/null
	done
	udevadm settle --timeout=10
}

unmount_fakes() { # the bind mounts of the raced error cases, if still there
	local f
	mountpoint -q "$DEVS" && umount "$DEVS"
	mountpoint -q "$tmp/devs" && umount "$tmp/devs"
	for f in "$TYPES"/*/available_instances; do
		findmnt -rn "$f" >/dev/null 2>&1 && umount "$f"
	done
	return 0
}

cleanup_cell() {
	local u
	unmount_fakes
	virsh -c qemu:///system destroy "$DOMAIN" >/dev/null 2>&1
	virsh -c qemu:///system undefine "$DOMAIN" >/dev/null 2>&1
	for u in $U1 $U2 $U3; do
		virsh -c qemu:///system nodedev-destroy "$(node_of "$u")" >/dev/null 2>&1
		virsh -c qemu:///system nodedev-undefine "$(node_of "$u")" >/dev/null 2>&1
		rm -f "$CONF/mtty/$u"
	done
	remove_all
	rmdir "$CONF/mtty" 2>/dev/null
	mdev_unload
}
stop_libvirtd() {
	[ -n "$lvpid" ] || return 0
	kill "$lvpid" 2>/dev/null
	for _ in $(seq 40); do kill -0 "$lvpid" 2>/dev/null || break; sleep 0.25; done
	kill -9 "$lvpid" 2>/dev/null
	lvlog=$logdir/libvirtd-$(date +%Y%m%d-%H%M%S).log
	cp "$tmp/libvirtd.log" "$lvlog" 2>/dev/null || lvlog=
	lvpid=
}
cleanup_all() {
	cleanup_cell
	stop_libvirtd
	[ -n "$bound" ] && umount /usr/bin/mdevctl
	rm -rf "$tmp"
}
summary() { echo "1..$n"; echo "libvirt: $pass passed, $fail failed"; }
trap cleanup_all EXIT

echo "TAP version 13"

# --- The host: mdevctl, udev, libvirtd ----------------------------------
if [ -x "$mdevctl_bin" ] && mount --bind "$mdevctl_bin" /usr/bin/mdevctl; then
	bound=1
fi
mv=$(mdevctl --version 2>&1 | head -n1)
[ -n "$bound" ] && [ "$mv" = "mdevctl $mdevctl_version" ]
tap_result $? "mdevctl for libvirt: $mdevctl_bin over /usr/bin/mdevctl prints 'mdevctl $mdevctl_version' (got '$mv')"
# the rest would test another mdevctl under this one's name
[ "$fail" = 0 ] || { summary; exit 1; }
mkdir -p "$CONF/scripts.d/callouts" "$CONF/scripts.d/notifiers"

udevd_up
tap_result $? "systemd-udevd answers udevadm control --ping"

# A host's libvirtd, minus what a VM without systemd, cgroups, KVM or
# security modules cannot give it: QEMU runs as root, without namespaces,
# cgroups or a security driver, its output in a file (no virtlogd).
cat >/etc/libvirt/qemu.conf <<'EOF'
# libvirt-test.sh (mdev-rs test VM)
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
EOF
printf 'log_outputs = "3:file:%s/libvirtd.log"\n' "$tmp" >"$tmp/libvirtd.conf"
mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/cache/libvirt/qemu /run/libvirt
t0=$SECONDS
libvirtd --daemon --config "$tmp/libvirtd.conf" --pid-file "$tmp/libvirtd.pid"
wait_for 60 virsh -c qemu:///system version >/dev/null 2>&1
lvpid=$(cat "$tmp/libvirtd.pid" 2>/dev/null)
v version
lib=$(sed -nE 's/^Using library: libvirt (.*)/\1/p' <<<"$out")
hv=$(sed -nE 's/^Running hypervisor: QEMU (.*)/\1/p' <<<"$out")
[ "$rc" = 0 ] && [[ $lib == 11.3.* ]] && [[ $hv == 10.0.* ]]
tap_result $? "libvirtd answers after $((SECONDS - t0)) s: libvirt ${lib:-?}, QEMU ${hv:-?} (want 11.3, 10.0)"
if [ "$rc" != 0 ]; then
	show version
	tail -n 20 "$tmp/libvirtd.log" 2>/dev/null | diag
	summary
	exit 1
fi

# Start clean.
for m in $MDEV_ALL_SAMPLES; do modprobe -r "$m" 2>/dev/null; done
rmmod mdev mdev_c 2>/dev/null

parent_listed() { [ "$(virsh -c qemu:///system nodedev-list --cap mdev_types 2>/dev/null | grep -v '^$')" = "$PARENT_NODE" ]; }
parent_gone() {
	local o
	o=$(virsh -c qemu:///system nodedev-list 2>/dev/null) || return 1
	! grep -qx "$PARENT_NODE" <<<"$o"
}
active_is() { [ "$(info_of "$1" Active)" = "$2" ]; }

# --- The domain ---------------------------------------------------------
domain_xml() { # domain_xml <uuid> <console file>
	cat <<EOF
<domain type='qemu'>
  <name>$DOMAIN</name>
  <memory unit='MiB'>96</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$nested_kernel</kernel>
    <initrd>$nested_initrd</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet lpj=1000000 no_timer_check tsc=unstable MTTY_E2E_PORTS=2 MTTY_E2E_ROUNDS=100 MTTY_E2E_PAUSE_MS=500</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='custom' match='exact' check='none'><model fallback='allow'>qemu64</model></cpu>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <serial type='file'><source path='$2'/><target port='0'/></serial>
    <hostdev mode='subsystem' type='mdev' model='vfio-pci'>
      <source><address uuid='$1'/></source>
    </hostdev>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}

run_domain() { # run_domain <cell label>
	local cl=$1 node con pid grp line keep
	node=$(node_of "$U3")
	# QEMU writes the console to the guest's own /tmp: read over 9p while
	# QEMU writes it, a file in the shared log folder came back torn
	# ("PASS por=ttyS1", ENODATA); it is copied there at the end.
	con=$tmp/nested-console.log
	keep=$logdir/libvirt-nested-${cl//\//-}-$(date +%Y%m%d-%H%M%S).log
	rm -f "$con"
	if [ ! -f "$nested_kernel" ] || [ ! -f "$nested_initrd" ]; then
		tap_result 1 "[$cl] domain: no nested kernel $nested_kernel / $nested_initrd (make nested; MDEV_E2E_DIR)"
		return
	fi
	mdev_xml "$U3" mtty-2 >"$tmp/u3.xml"
	v nodedev-define "$tmp/u3.xml" || show nodedev-define "$tmp/u3.xml"
	r1=$rc
	v nodedev-start "$node" || show nodedev-start "$node"
	[ "$r1" = 0 ] && [ "$rc" = 0 ] && [ "$(dev_type "$U3")" = mtty-2 ]
	tap_result $? "[$cl] domain: the mdev $U3 defined and started through libvirt"
	domain_xml "$U3" "$con" >"$tmp/dom.xml"
	v define "$tmp/dom.xml" && v start "$DOMAIN"
	[ "$rc" = 0 ] && [ "$(virsh -c qemu:///system domstate "$DOMAIN" 2>/dev/null | head -n1)" = running ]
	if ! tap_result $? "[$cl] domain: virsh define + start of $DOMAIN with <hostdev type='mdev' model='vfio-pci'> $U3: running"; then
		show start "$DOMAIN"
		tail -n 20 "/var/log/libvirt/qemu/$DOMAIN.log" 2>/dev/null | diag
		return
	fi
	pid=$(cat "/run/libvirt/qemu/$DOMAIN.pid" 2>/dev/null)
	grp=/dev/vfio/$(basename "$(readlink "$DEVS/$U3/iommu_group")")
	args=$(tr '\0' ' ' <"/proc/${pid:-0}/cmdline" 2>/dev/null)
	fds=$(for f in /proc/"${pid:-0}"/fd/*; do readlink "$f"; done 2>/dev/null)
	[[ $args == *"\"sysfsdev\":\"$DEVS/$U3\""* || $args == *"sysfsdev=$DEVS/$U3"* ]] && grep -qx "$grp" <<<"$fds"
	tap_result $? "[$cl] domain: libvirt's QEMU (pid ${pid:-?}) has vfio-pci sysfsdev=$DEVS/$U3 and holds $grp open"
	[[ $args == *"$U3"* ]] || { echo "QEMU command line: $args" | diag; }
	# until the second round, as long as QEMU lives
	wait_for "$boot_timeout" eval 'grep -q "^MTTY-E2E: ROUND 2/" "$con" || ! kill -0 "${pid:-0}" 2>/dev/null'
	[ "$(grep -c '^MTTY-E2E: PASS port=' "$con")" -ge 2 ] && grep -q '^MTTY-E2E: ROUND 2/' "$con" &&
		! grep -q '^MTTY-E2E: FAIL' "$con" &&
		! grep -qE 'BUG:|WARNING:|Oops|general protection|Kernel panic|Call Trace:' "$con"
	tap_result $? "[$cl] domain: the nested guest's 8250 driver loops bytes through both mtty ports, $(grep -c '^MTTY-E2E: PASS port=' "$con") port rounds passed, none failed, no kernel report (console $keep)"
	grep -E '^MTTY-E2E:' "$con" | head -n 8 | diag
	grep -E 'BUG:|WARNING:|Oops|general protection|Kernel panic|Call Trace:' "$con" | head -n 5 | diag
	# libvirt refuses to remove an mdev a running domain uses
	check_error "[$cl] domain: nodedev-destroy of the assigned mdev while the domain runs is refused" \
		"in use" nodedev-destroy "$node"
	v destroy "$DOMAIN"
	cp "$con" "$keep"
	local st
	st=$(virsh -c qemu:///system domstate "$DOMAIN" --reason 2>/dev/null | head -n1)
	wait_for 10 eval '! kill -0 "${pid:-0}" 2>/dev/null'
	[ "$rc" = 0 ] && [ "$st" = "shut off (destroyed)" ] && ! kill -0 "${pid:-0}" 2>/dev/null
	tap_result $? "[$cl] domain: virsh destroy: '$st', QEMU (pid ${pid:-?}) gone"
	v nodedev-destroy "$node"
	[ "$rc" = 0 ] && [ ! -e "$DEVS/$U3" ] && [ "$(avail mtty-2)" = 12 ]
	tap_result $? "[$cl] domain: after virsh destroy the mdev is released: nodedev-destroy removes it (exit $rc${err:+, $err}; mtty-2 available $(avail mtty-2))"
	v undefine "$DOMAIN"
	r1=$rc
	v nodedev-undefine "$node"
	[ "$r1" = 0 ] && [ "$rc" = 0 ] && [ ! -e "$CONF/mtty/$U3" ] && [ -z "$(mdev_nodes --all)" ] &&
		! virsh -c qemu:///system dominfo "$DOMAIN" >/dev/null 2>&1
	tap_result $? "[$cl] domain: virsh undefine ($r1), nodedev-undefine ($rc): no domain, no definition, no node devices ('$(mdev_nodes --all)')"
}

mapfile -t cells < <(mdev_cells)
# The domain runs on the C mtty over the C core and the Rust mtty over the
# Rust core, those of them that are tested, or else on the last cell.
if [ "$domain_cells" = default ]; then
	domain_cells=
	for c in "mdev_c mtty" "mdev mtty_rs"; do
		[[ " ${cells[*]/ //} " == *" ${c/ //} "* ]] && domain_cells+=" ${c/ //}"
	done
	[ -n "$domain_cells" ] || { c=${cells[${#cells[@]} - 1]}; domain_cells=${c/ //}; }
fi
[ -n "${domain_cells// /}" ] || echo "# domain: MDEV_LIBVIRT_DOMAIN_CELLS is empty, no domain is booted"
domains=0
for cell in "${cells[@]}"; do
	read -r core impl <<<"$cell"
	MDEV_CORE=$core
	MDEV_SAMPLES=$impl
	cl=$core/$impl
	n1=$(node_of "$U1")
	echo "# --- core=$core mtty=$impl"
	mdev_load >"$tmp/load" 2>&1
	lrc=$?
	diag <"$tmp/load"
	udevadm settle --timeout=30
	wait_for "$lv_timeout" parent_listed
	[ "$lrc" = 0 ] && parent_listed
	tap_result $? "[$cl] load core + $impl: nodedev-list --cap mdev_types is exactly $PARENT_NODE"
	if [ "$lrc" != 0 ]; then
		cleanup_cell
		continue
	fi

	# a. the parent's types, against sysfs
	v nodedev-dumpxml "$PARENT_NODE"
	got=$(xml_facts <<<"$out" 2>&1) want=$(parent_facts_sysfs)
	[ "$rc" = 0 ] && [ "$got" = "$want" ] && [ "$(grep -c '^type ' <<<"$got")" = 2 ]
	tap_result $? "[$cl] nodedev-dumpxml $PARENT_NODE: path, and each type's id, name, deviceAPI, availableInstances as in sysfs ($(grep '^type ' <<<"$got" | tr '\n' ';'))"
	[ "$got" = "$want" ] || { echo "got:"; echo "$got"; echo "want:"; echo "$want"; echo "$out"; } | diag

	# b. define, start
	mdev_xml "$U1" mtty-2 >"$tmp/u1.xml"
	v nodedev-define "$tmp/u1.xml"
	f=$CONF/mtty/$U1
	[ "$rc" = 0 ] && [[ $out == "Node device '$n1' defined from '$tmp/u1.xml'" ]] &&
		python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != {"mdev_type": "mtty-2", "start": "manual", "attrs": []})' "$f" 2>/dev/null &&
		[ ! -e "$DEVS/$U1" ]
	tap_result $? "[$cl] nodedev-define: '$out'; mdevctl wrote $f = {mdev_type: mtty-2, start: manual, attrs: []}; not created"
	[ "$rc" = 0 ] || show nodedev-define
	i=$(info_of "$n1" Active)/$(info_of "$n1" Persistent)/$(info_of "$n1" Autostart)
	[ "$i" = no/yes/no ]
	tap_result $? "[$cl] nodedev-info $n1: Active/Persistent/Autostart = $i (want no/yes/no)"

	a2=$(avail mtty-2)
	v nodedev-start "$n1"
	udevadm settle --timeout=10
	wait_for "$lv_timeout" active_is "$n1" yes
	[ "$rc" = 0 ] && [ "$(dev_type "$U1")" = mtty-2 ] && [ "$(dev_parent "$U1")" = mtty ] &&
		[ "$a2" = 12 ] && [ "$(avail mtty-2)" = 11 ] && active_is "$n1" yes &&
		[ "$(mdev_nodes)" = "$n1" ]
	tap_result $? "[$cl] nodedev-start: $DEVS/$U1 is mtty-2 on mtty, available 12 -> $(avail mtty-2), Active: $(info_of "$n1" Active), nodedev-list --cap mdev: '$(mdev_nodes)'"
	[ "$rc" = 0 ] || show nodedev-start "$n1"

	v nodedev-dumpxml "$n1"
	got=$(xml_facts <<<"$out" 2>&1) want=$(mdev_facts_sysfs "$U1")
	[ "$rc" = 0 ] && [ "$got" = "$want" ] && grep -qE '^iommuGroup [0-9]+$' <<<"$got" &&
		grep -qE '^driver [a-z_]+$' <<<"$got" && grep -qx 'mdev_type mtty-2' <<<"$got"
	tap_result $? "[$cl] nodedev-dumpxml $n1: $(grep -E '^(mdev_type|iommuGroup|driver|parent_addr) ' <<<"$got" | tr '\n' ';') path, uuid as in sysfs"
	[ "$got" = "$want" ] || { echo "got:"; echo "$got"; echo "want:"; echo "$want"; echo "$out"; } | diag

	# the parent's counts follow: one mtty-2 taken
	parent_now() { v nodedev-dumpxml "$PARENT_NODE" && [ "$(xml_facts <<<"$out")" = "$(parent_facts_sysfs)" ]; }
	wait_for 5 parent_now
	tap_result $? "[$cl] nodedev-dumpxml $PARENT_NODE after the start: availableInstances as in sysfs ($(xml_facts <<<"$out" | grep '^type ' | sed 's/|[^|]*|[^|]*|/ /' | tr '\n' ';'))"

	# c. errors, refused by libvirt or by mdevctl's own checks
	check_error "[$cl] nodedev-start of an active device fails" "already active" nodedev-start "$n1"
	mdev_xml "$U1" mtty-2 >"$tmp/dup.xml"
	check_error "[$cl] nodedev-create of a duplicate UUID fails (mdevctl's check)" \
		"Device already exists" nodedev-create "$tmp/dup.xml"
	# ... and by the kernel, when mdevctl's check is raced: mdevctl sees no
	# device, writes "create", and the core refuses the UUID (EEXIST)
	mkdir -p "$tmp/devs"
	before=$(state)
	mount -t tmpfs none "$tmp/devs" && mount --bind "$tmp/devs" "$DEVS"
	v nodedev-create "$tmp/dup.xml"
	unmount_fakes
	error_result "[$cl] nodedev-create of a duplicate UUID, mdevctl's check raced: the core's EEXIST reaches virsh" \
		"File exists" "$before"
	for i in $(seq -w 10 20); do echo "$FILL$i" >"$TYPES/mtty-2/create"; done
	udevadm settle --timeout=10
	wait_for 5 parent_now
	[ "$(avail mtty-2)" = 0 ] && [ "$(avail mtty-1)" = 0 ] && parent_now
	tap_result $? "[$cl] 11 more mtty-2 devices through sysfs: available_instances 0, and nodedev-dumpxml $PARENT_NODE says so ($(xml_facts <<<"$out" | grep '^type ' | sed 's/|[^|]*|[^|]*|/ /' | tr '\n' ';'))"
	mdev_xml "$U2" mtty-2 >"$tmp/u2.xml"
	check_error "[$cl] nodedev-create on an exhausted type fails (mdevctl's check)" \
		"No available instances of mtty-2 on mtty" nodedev-create "$tmp/u2.xml"
	# ... raced: mdevctl reads a stale "1", and mtty refuses (ENOSPC)
	echo 1 >"$tmp/avail1"
	before=$(state)
	mount --bind "$tmp/avail1" "$TYPES/mtty-2/available_instances"
	v nodedev-create "$tmp/u2.xml"
	unmount_fakes
	error_result "[$cl] nodedev-create on an exhausted type, mdevctl's check raced: the kernel's ENOSPC reaches virsh" \
		"No space left on device" "$before"
	for i in $(seq -w 10 20); do echo 1 >"$DEVS/$FILL$i/remove"; done
	udevadm settle --timeout=10

	# d. destroy: stopped, still defined
	v nodedev-destroy "$n1"
	udevadm settle --timeout=10
	wait_for "$lv_timeout" active_is "$n1" no
	i=$(info_of "$n1" Active)/$(info_of "$n1" Persistent)
	[ "$rc" = 0 ] && [ -z "$(dev_list)" ] && [ "$(avail mtty-2)" = 12 ] && [ "$i" = no/yes ] &&
		[ "$(mdev_nodes --all)" = "$n1" ] && [ -z "$(mdev_nodes)" ]
	tap_result $? "[$cl] nodedev-destroy: no mdev in sysfs ('$(dev_list)'), available 12 ($(avail mtty-2)), Active/Persistent $i, listed with --all only"
	[ "$rc" = 0 ] || show nodedev-destroy "$n1"

	# e. autostart when the parent comes back
	v nodedev-autostart "$n1"
	[ "$rc" = 0 ] && [ "$(info_of "$n1" Autostart)" = yes ] &&
		python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != {"mdev_type": "mtty-2", "start": "auto", "attrs": []})' "$f" 2>/dev/null
	tap_result $? "[$cl] nodedev-autostart: Autostart: $(info_of "$n1" Autostart), $f says start: auto"
	[ "$rc" = 0 ] || show nodedev-autostart "$n1"
	modprobe -r "$impl"
	udevadm settle --timeout=10
	wait_for "$lv_timeout" parent_gone
	parent_gone
	tap_result $? "[$cl] modprobe -r $impl: $PARENT_NODE leaves libvirt's node devices"
	t0=${EPOCHREALTIME/./}
	modprobe "$impl"
	wait_for "$lv_timeout" test -e "$DEVS/$U1"
	ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
	udevadm settle --timeout=10
	wait_for "$lv_timeout" active_is "$n1" yes
	[ "$(dev_type "$U1")" = mtty-2 ] && active_is "$n1" yes && parent_listed
	tap_result $? "[$cl] modprobe $impl: udev + mdevctl autostart $U1 after $ms ms; libvirt lists the parent again and $n1 Active: $(info_of "$n1" Active)"

	# f. destroy, undefine: nothing left
	v nodedev-destroy "$n1"
	r1=$rc
	v nodedev-undefine "$n1"
	udevadm settle --timeout=10
	wait_for "$lv_timeout" eval '[ -z "$(mdev_nodes --all)" ]'
	[ "$r1" = 0 ] && [ "$rc" = 0 ] && [ -z "$(dev_list)" ] && [ -z "$(conf_list)" ] && [ -z "$(mdev_nodes --all)" ]
	tap_result $? "[$cl] nodedev-destroy + nodedev-undefine: no mdevs ('$(dev_list)'), no definitions ('$(conf_list)'), no node devices ('$(mdev_nodes --all)')"
	[ "$rc" = 0 ] || show nodedev-undefine "$n1"

	# g. a domain using a libvirt-started mdev
	case " $domain_cells " in *" $cl "*) run_domain "$cl"; domains=$((domains + 1)) ;; esac

	cleanup_cell
	left=
	for m in mdev mdev_c $MDEV_MTTY_COMPAT; do [ -d "/sys/module/$m" ] && left+=" $m"; done
	wait_for "$lv_timeout" parent_gone
	[ -z "$left" ] && parent_gone
	tap_result $? "[$cl] unload core + $impl${left:+ (still loaded:$left)}; $PARENT_NODE gone from libvirt"
done

# Nothing of the test left: no fake mount, libvirt's QEMU gone; then
# libvirtd stopped.
unmount_fakes
stop_libvirtd
left=
mountpoint -q "$DEVS" && left+=" mount on $DEVS"
findmnt -rn "$TYPES/mtty-2/available_instances" >/dev/null 2>&1 && left+=" mount on available_instances"
pgrep -x libvirtd >/dev/null && left+=" libvirtd"
pgrep -f qemu-system >/dev/null && left+=" qemu-system-x86_64"
[ -z "$left" ]
tap_result $? "at the end: libvirtd stopped, no QEMU, no bind mount of the raced cases left${left:+ (left:$left)}"
[ -n "${domain_cells// /}" ] && [ "$domains" = 0 ] &&
	tap_result 1 "domain: no cell of MDEV_LIBVIRT_DOMAIN_CELLS ($domain_cells) ran"

# libvirtd logged no error but the expected ones: what a VM without DMI
# or KVM lacks; the refusals and mdevctl failures the checks provoked; the
# add uevent of the mdev the kernel refused with ENOSPC (both cores add the
# device, then remove it when the driver's probe fails: libvirt cannot read
# its mdev_type); the parent's removal with the core (modprobe -r takes the
# core, and /sys/class/mdev_bus, with the sample); virsh disconnecting.
grep -E ' error : ' "$lvlog" 2>/dev/null |
	grep -vE 'udevGetDMIData|dmidecode -q|Unable to open /dev/kvm' |
	grep -vE "virMdevctl(Create|Start).*Unable to start mediated device|nodeDeviceDestroy.*device in use" |
	grep -vE "udevProcessMediatedDevice.*failed to wait for file '[^']*/$U2/mdev_type'" |
	grep -vE "cannot open directory '/sys/class/mdev_bus'|Unable to find address for mdev parent device '$PARENT_NODE'" |
	grep -vE 'virNetSocketReadWire.*End of file while reading data' | head -n 20 >"$tmp/lverr"
[ -n "$lvlog" ] && grep -q 'info : libvirt version: ' "$lvlog" && [ ! -s "$tmp/lverr" ]
tap_result $? "libvirtd's log ${lvlog:-(none)} has no unexpected error ($(wc -l <"$tmp/lverr") lines)"
diag <"$tmp/lverr"

summary
[ "$fail" = 0 ] && [ "$n" -gt 0 ]
