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
domain_cells=${MDEV_LIBVIRT_DOMAIN_CELLS-mdev_c/mtty mdev/mtty_rs}
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
bound= lvpid=

result() { # result <0|1> <description>
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		pass=$((pass + 1)); echo "ok $n - $2"
	else
		fail=$((fail + 1)); echo "not ok $n - $2"
	fi
}
diag() { awk '{ print "# " $0 }'; }

# v <virsh args>: stdout in $out, stderr in $err (one line), exit code in $rc
v() {
	out=$(virsh -c qemu:///system "$@" 2>"$tmp/err")
	rc=$?
	err=$(tr '\n' ' ' <"$tmp/err" | sed 's/  */ /g; s/ $//')
}
show() { { echo "\$ virsh $*  (exit $rc)"; [ -n "$out" ] && echo "$out"; [ -n "$err" ] && echo "stderr: $err"; } | diag; }

dev_list() { ls "$DEVS" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
dev_type() { basename "$(readlink "$DEVS/$1/mdev_type" 2>/dev/null)"; }
dev_parent() { basename "$(dirname "$(realpath "$DEVS/$1" 2>/dev/null)")"; }
avail() { cat "$TYPES/$1/available_instances" 2>/dev/null; }
mdev_nodes() { virsh -c qemu:///system nodedev-list --cap mdev "$@" 2>/dev/null | grep -v '^$' | sort | tr '\n' ' ' | sed 's/ $//'; }
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

# check_error <description> <expected text> <virsh args...>: the command
# fails, its message has the text, and nothing changed.
check_error() {
	local desc=$1 want=$2 before after
	shift 2
	before=$(state)
	v "$@"
	udevadm settle --timeout=10
	after=$(state)
	[ "$rc" != 0 ] && [[ $err == *"$want"* ]] && [ "$after" = "$before" ]
	result $? "$desc: exit $rc, '$err'; nothing changed ($after)"
	[ "$after" = "$before" ] || echo "# before: $before" | diag
}

remove_all() { # every mdev of the mtty parent, by sysfs
	local d
	for d in "$DEVS"/*; do
		[ -e "$d/remove" ] && echo 1 >"$d/remove" 2>/dev/null
	done
	udevadm settle --timeout=10
}

cleanup_cell() {
	local u
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
cleanup_all() {
	cleanup_cell
	umount "$tmp/devs" 2>/dev/null
	for f in "$TYPES"/*/available_instances; do umount "$f" 2>/dev/null; done
	if [ -n "$lvpid" ]; then
		kill "$lvpid" 2>/dev/null
		for _ in $(seq 40); do kill -0 "$lvpid" 2>/dev/null || break; sleep 0.25; done
	fi
	[ -n "$bound" ] && umount /usr/bin/mdevctl
	rm -rf "$tmp"
}
trap cleanup_all EXIT

echo "TAP version 13"

# --- The host: mdevctl, udev, libvirtd ----------------------------------
if [ -x "$mdevctl_bin" ] && mount --bind "$mdevctl_bin" /usr/bin/mdevctl; then
	bound=1
fi
mv=$(mdevctl --version 2>&1 | head -n1)
[ -n "$bound" ] && [ "$mv" = "mdevctl $mdevctl_version" ]
result $? "mdevctl for libvirt: $mdevctl_bin over /usr/bin/mdevctl prints 'mdevctl $mdevctl_version' (got '$mv')"
mkdir -p "$CONF/scripts.d/callouts" "$CONF/scripts.d/notifiers"

if ! udevadm control --ping >/dev/null 2>&1; then
	echo "# systemd-udevd is not running: starting it"
	/lib/systemd/systemd-udevd --daemon
	sleep 1
	udevadm trigger --action=add >/dev/null 2>&1
	udevadm settle --timeout=60
fi

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
result $? "libvirtd answers after $((SECONDS - t0)) s: libvirt ${lib:-?}, QEMU ${hv:-?} (want 11.3, 10.0)"
[ "$rc" = 0 ] || show version

# Start clean.
for m in $MDEV_ALL_SAMPLES; do modprobe -r "$m" 2>/dev/null; done
rmmod mdev mdev_c 2>/dev/null

parent_listed() { [ "$(virsh -c qemu:///system nodedev-list --cap mdev_types 2>/dev/null | grep -v '^$')" = "$PARENT_NODE" ]; }
parent_gone() { ! virsh -c qemu:///system nodedev-list 2>/dev/null | grep -qx "$PARENT_NODE"; }
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
	local cl=$1 node con pid grp line
	node=$(node_of "$U3")
	con=$logdir/libvirt-nested-${cl//\//-}-$(date +%Y%m%d-%H%M%S).log
	if [ ! -f "$nested_kernel" ] || [ ! -f "$nested_initrd" ]; then
		result 1 "[$cl] domain: no nested kernel $nested_kernel / $nested_initrd (make nested; MDEV_E2E_DIR)"
		return
	fi
	mdev_xml "$U3" mtty-2 >"$tmp/u3.xml"
	v nodedev-define "$tmp/u3.xml" && v nodedev-start "$node"
	[ "$rc" = 0 ] && [ "$(dev_type "$U3")" = mtty-2 ]
	result $? "[$cl] domain: the mdev $U3 defined and started through libvirt"
	[ "$rc" = 0 ] || show nodedev-start "$node"
	domain_xml "$U3" "$con" >"$tmp/dom.xml"
	v define "$tmp/dom.xml"
	[ "$rc" = 0 ] && v start "$DOMAIN"
	[ "$rc" = 0 ] && [ "$(virsh -c qemu:///system domstate "$DOMAIN" 2>/dev/null | head -n1)" = running ]
	result $? "[$cl] domain: virsh define + start of $DOMAIN with <hostdev type='mdev' model='vfio-pci'> $U3: running"
	[ "$rc" = 0 ] || { show start "$DOMAIN"; tail -n 20 "/var/log/libvirt/qemu/$DOMAIN.log" 2>/dev/null | diag; }
	pid=$(cat "/run/libvirt/qemu/$DOMAIN.pid" 2>/dev/null)
	grp=/dev/vfio/$(basename "$(readlink "$DEVS/$U3/iommu_group")")
	args=$(tr '\0' ' ' <"/proc/${pid:-0}/cmdline" 2>/dev/null)
	fds=$(for f in /proc/"${pid:-0}"/fd/*; do readlink "$f"; done 2>/dev/null)
	[[ $args == *"\"sysfsdev\":\"$DEVS/$U3\""* || $args == *"sysfsdev=$DEVS/$U3"* ]] && grep -qx "$grp" <<<"$fds"
	result $? "[$cl] domain: libvirt's QEMU (pid ${pid:-?}) has vfio-pci sysfsdev=$DEVS/$U3 and holds $grp open"
	[[ $args == *"$U3"* ]] || { echo "QEMU command line: $args" | diag; }
	wait_for "$boot_timeout" grep -q '^MTTY-E2E: ROUND 2/' "$con"
	[ "$(grep -c '^MTTY-E2E: PASS port=' "$con")" -ge 2 ] && ! grep -q '^MTTY-E2E: FAIL' "$con"
	result $? "[$cl] domain: the nested guest's 8250 driver loops bytes through both mtty ports, $(grep -c '^MTTY-E2E: PASS port=' "$con") ports x rounds passed, none failed (console $con)"
	grep -E '^MTTY-E2E:' "$con" | head -n 8 | diag
	grep -qE 'BUG:|WARNING:|Oops|Kernel panic|Call Trace:' "$con" && { echo "kernel report in the nested console" | diag; }
	# libvirt refuses to remove an mdev a running domain uses
	check_error "[$cl] domain: nodedev-destroy of the assigned mdev while the domain runs is refused" \
		"in use" nodedev-destroy "$node"
	v destroy "$DOMAIN"
	local st
	st=$(virsh -c qemu:///system domstate "$DOMAIN" --reason 2>/dev/null | head -n1)
	wait_for 10 eval '! kill -0 "${pid:-0}" 2>/dev/null'
	[ "$rc" = 0 ] && [ "$st" = "shut off (destroyed)" ] && ! kill -0 "${pid:-0}" 2>/dev/null
	result $? "[$cl] domain: virsh destroy: '$st', QEMU (pid ${pid:-?}) gone"
	v nodedev-destroy "$node"
	[ "$rc" = 0 ] && [ ! -e "$DEVS/$U3" ] && [ "$(avail mtty-2)" = 12 ]
	result $? "[$cl] domain: after virsh destroy the mdev is released: nodedev-destroy removes it (exit $rc${err:+, $err}; mtty-2 available $(avail mtty-2))"
	v undefine "$DOMAIN" && v nodedev-undefine "$node"
	[ "$rc" = 0 ] && [ ! -e "$CONF/mtty/$U3" ] && [ -z "$(mdev_nodes --all)" ]
	result $? "[$cl] domain: virsh undefine, nodedev-undefine: nothing left (node devices '$(mdev_nodes --all)')"
}

cells=()
for core in "${cores[@]}"; do
	for impl in "${impls[@]}"; do
		cells+=("$core $impl")
	done
done
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
	result $? "[$cl] load core + $impl: nodedev-list --cap mdev_types is exactly $PARENT_NODE"
	if [ "$lrc" != 0 ]; then
		cleanup_cell
		continue
	fi

	# a. the parent's types, against sysfs
	v nodedev-dumpxml "$PARENT_NODE"
	got=$(xml_facts <<<"$out" 2>&1) want=$(parent_facts_sysfs)
	[ "$rc" = 0 ] && [ "$got" = "$want" ] && [ "$(grep -c '^type ' <<<"$got")" = 2 ]
	result $? "[$cl] nodedev-dumpxml $PARENT_NODE: path, and each type's id, name, deviceAPI, availableInstances as in sysfs ($(grep '^type ' <<<"$got" | tr '\n' ';'))"
	[ "$got" = "$want" ] || { echo "got:"; echo "$got"; echo "want:"; echo "$want"; echo "$out"; } | diag

	# b. define, start
	mdev_xml "$U1" mtty-2 >"$tmp/u1.xml"
	v nodedev-define "$tmp/u1.xml"
	f=$CONF/mtty/$U1
	[ "$rc" = 0 ] && [[ $out == "Node device '$n1' defined from '$tmp/u1.xml'" ]] &&
		python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != {"mdev_type": "mtty-2", "start": "manual", "attrs": []})' "$f" 2>/dev/null &&
		[ ! -e "$DEVS/$U1" ]
	result $? "[$cl] nodedev-define: '$out'; mdevctl wrote $f = {mdev_type: mtty-2, start: manual, attrs: []}; not created"
	[ "$rc" = 0 ] || show nodedev-define
	i=$(info_of "$n1" Active)/$(info_of "$n1" Persistent)/$(info_of "$n1" Autostart)
	[ "$i" = no/yes/no ]
	result $? "[$cl] nodedev-info $n1: Active/Persistent/Autostart = $i (want no/yes/no)"

	a2=$(avail mtty-2)
	v nodedev-start "$n1"
	udevadm settle --timeout=10
	wait_for "$lv_timeout" active_is "$n1" yes
	[ "$rc" = 0 ] && [ "$(dev_type "$U1")" = mtty-2 ] && [ "$(dev_parent "$U1")" = mtty ] &&
		[ "$a2" = 12 ] && [ "$(avail mtty-2)" = 11 ] && active_is "$n1" yes &&
		[ "$(mdev_nodes)" = "$n1" ]
	result $? "[$cl] nodedev-start: $DEVS/$U1 is mtty-2 on mtty, available 12 -> $(avail mtty-2), Active: $(info_of "$n1" Active), nodedev-list --cap mdev: '$(mdev_nodes)'"
	[ "$rc" = 0 ] || show nodedev-start "$n1"

	v nodedev-dumpxml "$n1"
	got=$(xml_facts <<<"$out" 2>&1) want=$(mdev_facts_sysfs "$U1")
	[ "$rc" = 0 ] && [ "$got" = "$want" ]
	result $? "[$cl] nodedev-dumpxml $n1: $(grep -E '^(mdev_type|iommuGroup|driver|parent_addr) ' <<<"$got" | tr '\n' ';') path, uuid as in sysfs"
	[ "$got" = "$want" ] || { echo "got:"; echo "$got"; echo "want:"; echo "$want"; echo "$out"; } | diag

	# c. errors, refused by libvirt or by mdevctl's own checks
	check_error "[$cl] nodedev-start of an active device fails" "already active" nodedev-start "$n1"
	mdev_xml "$U1" mtty-2 >"$tmp/dup.xml"
	check_error "[$cl] nodedev-create of a duplicate UUID fails (mdevctl's check)" \
		"Device already exists" nodedev-create "$tmp/dup.xml"
	# ... and by the kernel, when mdevctl's check is raced: mdevctl sees no
	# device, writes "create", and the core refuses the UUID (EEXIST)
	mkdir -p "$tmp/devs"
	mount -t tmpfs none "$tmp/devs" && mount --bind "$tmp/devs" "$DEVS"
	check_error "[$cl] nodedev-create of a duplicate UUID, mdevctl's check raced: the core's EEXIST reaches virsh" \
		"File exists" nodedev-create "$tmp/dup.xml"
	umount "$DEVS"; umount "$tmp/devs"
	for i in $(seq -w 10 20); do echo "$FILL$i" >"$TYPES/mtty-2/create"; done
	udevadm settle --timeout=10
	[ "$(avail mtty-2)" = 0 ]
	result $? "[$cl] 11 more mtty-2 devices through sysfs: mtty-2 available_instances 0 (got $(avail mtty-2))"
	mdev_xml "$U2" mtty-2 >"$tmp/u2.xml"
	check_error "[$cl] nodedev-create on an exhausted type fails (mdevctl's check)" \
		"No available instances of mtty-2 on mtty" nodedev-create "$tmp/u2.xml"
	# ... raced: mdevctl reads a stale "1", and mtty refuses (ENOSPC)
	echo 1 >"$tmp/avail1"
	mount --bind "$tmp/avail1" "$TYPES/mtty-2/available_instances"
	check_error "[$cl] nodedev-create on an exhausted type, mdevctl's check raced: the kernel's ENOSPC reaches virsh" \
		"No space left on device" nodedev-create "$tmp/u2.xml"
	umount "$TYPES/mtty-2/available_instances"
	for i in $(seq -w 10 20); do echo 1 >"$DEVS/$FILL$i/remove"; done
	udevadm settle --timeout=10

	# d. destroy: stopped, still defined
	v nodedev-destroy "$n1"
	udevadm settle --timeout=10
	wait_for "$lv_timeout" active_is "$n1" no
	i=$(info_of "$n1" Active)/$(info_of "$n1" Persistent)
	[ "$rc" = 0 ] && [ -z "$(dev_list)" ] && [ "$(avail mtty-2)" = 12 ] && [ "$i" = no/yes ] &&
		[ "$(mdev_nodes --all)" = "$n1" ] && [ -z "$(mdev_nodes)" ]
	result $? "[$cl] nodedev-destroy: no mdev in sysfs ('$(dev_list)'), available 12 ($(avail mtty-2)), Active/Persistent $i, listed with --all only"
	[ "$rc" = 0 ] || show nodedev-destroy "$n1"

	# e. autostart when the parent comes back
	v nodedev-autostart "$n1"
	[ "$rc" = 0 ] && [ "$(info_of "$n1" Autostart)" = yes ] &&
		python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != {"mdev_type": "mtty-2", "start": "auto", "attrs": []})' "$f" 2>/dev/null
	result $? "[$cl] nodedev-autostart: Autostart: $(info_of "$n1" Autostart), $f says start: auto"
	[ "$rc" = 0 ] || show nodedev-autostart "$n1"
	modprobe -r "$impl"
	udevadm settle --timeout=10
	wait_for "$lv_timeout" parent_gone
	parent_gone
	result $? "[$cl] modprobe -r $impl: $PARENT_NODE leaves libvirt's node devices"
	t0=${EPOCHREALTIME/./}
	modprobe "$impl"
	wait_for "$lv_timeout" test -e "$DEVS/$U1"
	ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
	udevadm settle --timeout=10
	wait_for "$lv_timeout" active_is "$n1" yes
	[ "$(dev_type "$U1")" = mtty-2 ] && active_is "$n1" yes && parent_listed
	result $? "[$cl] modprobe $impl: udev + mdevctl autostart $U1 after $ms ms; libvirt lists the parent again and $n1 Active: $(info_of "$n1" Active)"

	# f. destroy, undefine: nothing left
	v nodedev-destroy "$n1"
	r1=$rc
	v nodedev-undefine "$n1"
	udevadm settle --timeout=10
	wait_for "$lv_timeout" eval '[ -z "$(mdev_nodes --all)" ]'
	[ "$r1" = 0 ] && [ "$rc" = 0 ] && [ -z "$(dev_list)" ] && [ -z "$(conf_list)" ] && [ -z "$(mdev_nodes --all)" ]
	result $? "[$cl] nodedev-destroy + nodedev-undefine: no mdevs ('$(dev_list)'), no definitions ('$(conf_list)'), no node devices ('$(mdev_nodes --all)')"
	[ "$rc" = 0 ] || show nodedev-undefine "$n1"

	# g. a domain using a libvirt-started mdev
	case " $domain_cells " in *" $cl "*) run_domain "$cl" ;; esac

	cleanup_cell
	left=
	for m in mdev mdev_c $MDEV_MTTY_COMPAT; do [ -d "/sys/module/$m" ] && left+=" $m"; done
	wait_for "$lv_timeout" parent_gone
	[ -z "$left" ] && parent_gone
	result $? "[$cl] unload core + $impl${left:+ (still loaded:$left)}; $PARENT_NODE gone from libvirt"
done

# libvirtd logged no error but the expected ones: what a VM without DMI
# or KVM lacks; the refusals and mdevctl failures the checks provoked; the
# add uevent of the mdev the kernel refused with ENOSPC (both cores add the
# device, then remove it when the driver's probe fails: libvirt cannot read
# its mdev_type); the parent's removal with the core (modprobe -r takes the
# core, and /sys/class/mdev_bus, with the sample); virsh disconnecting.
grep -E ' error : ' "$tmp/libvirtd.log" 2>/dev/null |
	grep -vE 'udevGetDMIData|dmidecode -q|Unable to open /dev/kvm' |
	grep -vE "virMdevctl(Create|Start).*Unable to start mediated device|nodeDeviceDestroy.*device in use" |
	grep -vE "udevProcessMediatedDevice.*failed to wait for file '[^']*/$U2/mdev_type'" |
	grep -vE "cannot open directory '/sys/class/mdev_bus'|Unable to find address for mdev parent device '$PARENT_NODE'" |
	grep -vE 'virNetSocketReadWire.*End of file while reading data' | head -n 20 >"$tmp/lverr"
[ ! -s "$tmp/lverr" ]
result $? "libvirtd logged no unexpected error ($(wc -l <"$tmp/lverr") lines)"
diag <"$tmp/lverr"

echo "1..$n"
echo "libvirt: $pass passed, $fail failed"
[ "$fail" = 0 ] && [ "$n" -gt 0 ]
