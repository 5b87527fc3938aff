#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# mdevctl end to end, run inside the VM: for each mdev core in
# MDEV_TEST_CORES (default "mdev_c mdev") and each mtty implementation in
# MDEV_MTTY_IMPLS (default "mtty mtty_rs", see lib.sh; empty: mtty) load the
# core with that mtty sample and
# drive mdevctl through types, start/list/stop, its error paths, and
# persistence with udev autostart (the 60-mdevctl.rules rule on the parent's
# MDEV_STATE=registered change uevent).  Every check asserts exact values;
# prints TAP, then "<name>: N passed, M failed"; exits 0 only if everything
# passed.  Removes what it created and unloads, also on failure.
#
#   vm-run.sh --kernel build/obj-default -- scripts/guest/mdevctl-test.sh \
#       [--bin <mdevctl> --version <version>] [--name <name>]
#
# Without --bin it tests the installed mdevctl (Debian's 1.2.0).  With --bin
# (e.g. the 1.4.0 that scripts/setup.sh builds from crates.io) it
# bind-mounts that binary over /usr/bin/mdevctl for the run, so that the
# shell and the udev rule's /usr/sbin/mdevctl (a link to it) both run it,
# checks that "mdevctl --version" prints "mdevctl <version>", and unmounts it
# at the end.  --name sets the summary's name (default mdevctl).
#
# It writes /etc/mdevctl.d and /etc/udev/rules.d, so outside the VM
# (MDEV_RS_VM unset) it refuses to run unless MDEVCTL_TEST_FORCE=1.
#
# The expected "mdevctl types --dumpjson" is
# tools/testing/selftests/vfio-mdev/mdevctl-types-mtty.json
# (MDEV_MDEVCTL_TYPES_JSON overrides it); MDEV_MDEVCTL_TIMEOUT (30) is how
# many seconds the autostart may take.  vm-run.sh forwards MDEV_* only.
#
# Autostart: Debian's rule file has two rules calling "mdevctl
# start-parent-mdevs": one on ACTION=="change" + MDEV_STATE=="registered" and
# a fallback on ACTION=="add" of the parent.  To prove that the first one
# (and so the core's change uevent) starts the device, the test shadows the
# file with /etc/udev/rules.d/60-mdevctl.rules holding only the change rule,
# copied verbatim from the installed file, and restores everything after.

. "$(dirname "$0")/lib.sh"

name=mdevctl bin= want_version=
while [ $# -gt 0 ]; do
	[ $# -ge 2 ] || { echo "mdevctl-test: $1 needs a value" >&2; exit 2; }
	case "$1" in
	--bin) bin=$2; shift 2 ;;
	--version) want_version=$2; shift 2 ;;
	--name) name=$2; shift 2 ;;
	*) echo "mdevctl-test: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -z "$bin" ] || [ -n "$want_version" ] ||
	{ echo "mdevctl-test: --bin needs --version" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
types_json=${MDEV_MDEVCTL_TYPES_JSON:-$here/../../tools/testing/selftests/vfio-mdev/mdevctl-types-mtty.json}
autostart_timeout=${MDEV_MDEVCTL_TIMEOUT:-30}
read -ra cores <<<"${MDEV_TEST_CORES:-mdev_c mdev}"
# The expected types JSON lists exactly the mtty parent: only an mtty
# implementation is loaded, one after the other.
impls_str=$(MDEV_SAMPLES=mtty mdev_mtty_impls 2>&1) ||
	{ echo "# $impls_str"; echo "mdevctl: 0 passed, 1 failed"; exit 1; }
read -ra impls <<<"$impls_str"

U1=83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 # started / stopped by hand
U2=83b8f4f2-509f-382f-3c1e-e6bfe0fa1002 # defined --auto, autostarted
U3=83b8f4f2-509f-382f-3c1e-e6bfe0fa1003 # never created (error paths)
DEVS=/sys/bus/mdev/devices
TYPES=/sys/class/mdev_bus/mtty/mdev_supported_types
CONF=/etc/mdevctl.d
RULES_OVERRIDE=/etc/udev/rules.d/60-mdevctl.rules

if [ "${MDEV_RS_VM:-}" != 1 ] && [ "${MDEVCTL_TEST_FORCE:-}" != 1 ]; then
	echo "mdevctl-test: meant for the VM (writes /etc); MDEVCTL_TEST_FORCE=1 to run anyway" >&2
	exit 2
fi

tmp=$(mktemp -d)
n=0 pass=0 fail=0
mon_pid=
saved_rules=
bound=

diag() { awk '{ print "# " $0 }'; }

# mdevctl <args>: runs it, stdout in $out, stderr in $err, exit code in $rc
mctl() {
	out=$(mdevctl "$@" 2>"$tmp/err")
	rc=$?
	err=$(cat "$tmp/err")
}
show() { # the last mdevctl call, as TAP comments
	{ echo "\$ mdevctl $*  (exit $rc)"; [ -n "$out" ] && echo "$out"; [ -n "$err" ] && echo "stderr: $err"; } | diag
}

norm() { # canonical JSON (sorted keys, fixed indentation) from stdin
	if command -v jq >/dev/null; then
		jq -S .
	else
		python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), indent=2, sort_keys=True))'
	fi
}
json_same() { # json_same <actual> <expected>: both parse and are equal
	local a e
	a=$(norm <<<"$1" 2>/dev/null) || return 1
	e=$(norm <<<"$2" 2>/dev/null) || return 1
	[ -n "$a" ] && [ "$a" = "$e" ]
}
check_json() { # check_json <description> <expected> <mdevctl args...>
	local desc=$1 exp=$2
	shift 2
	mctl "$@"
	if [ "$rc" = 0 ] && json_same "$out" "$exp"; then
		tap_result 0 "$desc"
	else
		tap_result 1 "$desc"
		show "$@"
		{ echo "expected:"; echo "$exp"; } | diag
	fi
}
check_text() { # check_text <description> <expected> <mdevctl args...> (blank lines ignored)
	local desc=$1 exp=$2
	shift 2
	mctl "$@"
	if [ "$rc" = 0 ] && [ "$(grep -v '^$' <<<"$out")" = "$exp" ]; then
		tap_result 0 "$desc"
	else
		tap_result 1 "$desc"
		show "$@"
		{ echo "expected:"; echo "$exp"; } | diag
	fi
}

list_json() { # list_json <uuid> <type> <start>: one mtty device as "mdevctl list --dumpjson" prints it
	printf '[{"mtty": [{"%s": {"mdev_type": "%s", "start": "%s", "attrs": []}}]}]' "$1" "$2" "$3"
}
dev_type() { basename "$(readlink "$DEVS/$1/mdev_type" 2>/dev/null)"; }
dev_parent() { basename "$(dirname "$(realpath "$DEVS/$1" 2>/dev/null)")"; }
avail() { cat "$TYPES/$1/available_instances" 2>/dev/null; }
dev_list() { ls "$DEVS" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }

stop_monitor() {
	[ -n "$mon_pid" ] && kill "$mon_pid" 2>/dev/null && wait "$mon_pid" 2>/dev/null
	mon_pid=
}

# Remove our devices and definitions, unload.  Idempotent.
cleanup_core() {
	local u
	stop_monitor
	for u in $U1 $U2 $U3; do
		if [ -e "$DEVS/$u" ]; then
			mdevctl stop -u "$u" >/dev/null 2>&1 || echo 1 >"$DEVS/$u/remove" 2>/dev/null
		fi
		if ls "$CONF"/*/"$u" >/dev/null 2>&1; then
			mdevctl undefine -u "$u" >/dev/null 2>&1 || rm -f "$CONF"/*/"$u"
		fi
	done
	rmdir "$CONF/mtty" 2>/dev/null
	udevadm settle --timeout=30 2>/dev/null
	mdev_unload
}
cleanup_all() {
	cleanup_core
	rm -f "$RULES_OVERRIDE"
	[ -n "$saved_rules" ] && mv "$saved_rules" "$RULES_OVERRIDE"
	udevadm control --reload 2>/dev/null
	[ -n "$bound" ] && umount /usr/bin/mdevctl
	rm -rf "$tmp"
}
trap cleanup_all EXIT

echo "TAP version 13"
if [ -n "$bin" ]; then
	if [ -x "$bin" ] && mount --bind "$bin" /usr/bin/mdevctl; then
		bound=1
	fi
	v=$(mdevctl --version 2>&1 | head -n1) sv=$(/usr/sbin/mdevctl --version 2>&1 | head -n1)
	[ -n "$bound" ] && [ "$v" = "mdevctl $want_version" ] && [ "$sv" = "$v" ]
	if ! tap_result $? "mdevctl under test: $bin bound over /usr/bin/mdevctl; mdevctl --version and /usr/sbin/mdevctl --version print 'mdevctl $want_version' (got '$v', '$sv')"; then
		# the rest would test another mdevctl under this one's name
		echo "1..$n"
		echo "$name: $pass passed, $fail failed"
		exit 1
	fi
fi
echo "# $(mdevctl --version 2>&1 | head -n1); cores: ${cores[*]}; mtty: ${impls[*]}"

# --- Environment mdevctl needs -------------------------------------------
# mdevctl refuses to run without /etc/mdevctl.d (1.2.0 also without its
# scripts.d/callouts and notifiers; 1.4.0 without
# /usr/lib/mdevctl/scripts.d/{callouts,notifiers}, which scripts/setup.sh
# creates on the host).
missing=
for d in "$CONF" "$CONF/scripts.d/callouts" "$CONF/scripts.d/notifiers"; do
	[ -d "$d" ] || { missing+=" $d"; mkdir -p "$d"; }
done
[ -z "$missing" ] || echo "# created missing mdevctl folders:$missing"
# The rule runs /usr/sbin/mdevctl (Debian installs /usr/bin/mdevctl).
[ -x /usr/sbin/mdevctl ]
tap_result $? "/usr/sbin/mdevctl (called by the udev rule) is executable"

udevd_up
tap_result $? "systemd-udevd answers udevadm control --ping"

rules_src=
for d in /etc/udev/rules.d /run/udev/rules.d /usr/lib/udev/rules.d /lib/udev/rules.d; do
	[ -f "$d/60-mdevctl.rules" ] && { rules_src=$d/60-mdevctl.rules; break; }
done
change_rule=$(grep -E '^ACTION=="change".*ENV\{MDEV_STATE\}=="registered"' "$rules_src" 2>/dev/null)
if [ -n "$change_rule" ]; then
	mkdir -p "$(dirname "$RULES_OVERRIDE")"
	if [ -e "$RULES_OVERRIDE" ]; then
		saved_rules=$tmp/60-mdevctl.rules.saved
		cp -p "$RULES_OVERRIDE" "$saved_rules"
	fi
	printf '# mdevctl-test.sh: only the change rule of %s\n%s\n' "$rules_src" "$change_rule" >"$RULES_OVERRIDE"
	udevadm control --reload
	tap_result $? "udev: only the MDEV_STATE=registered rule of $rules_src active"
else
	tap_result 1 "udev: no MDEV_STATE=registered rule in ${rules_src:-any 60-mdevctl.rules}"
fi

[ -r "$types_json" ] || echo "# no expected types file $types_json"
exp_types=$(cat "$types_json" 2>/dev/null)

# Start clean: no core, no sample, no definitions of ours.
for m in $MDEV_ALL_SAMPLES; do modprobe -r "$m" 2>/dev/null; done
rmmod mdev mdev_c 2>/dev/null

mapfile -t cells < <(mdev_cells)
for cell in "${cells[@]}"; do
	read -r core impl <<<"$cell"
	MDEV_CORE=$core
	MDEV_SAMPLES=$impl
	cl=$core/$impl
	echo "# --- core=$core mtty=$impl"
	mdev_load >"$tmp/load" 2>&1
	lrc=$?
	diag <"$tmp/load"
	if [ "$lrc" != 0 ] || [ ! -d /sys/class/mdev_bus/mtty ]; then
		tap_result 1 "[$cl] load core + $impl"
		cleanup_core
		continue
	fi
	tap_result 0 "[$cl] load core + $impl"
	# let the load's uevents (and any rule they run) finish first
	udevadm settle --timeout=30

	# a. types
	check_json "[$cl] mdevctl types --dumpjson equals mdevctl-types-mtty.json" "$exp_types" \
		types --dumpjson

	# b. start
	a1=$(avail mtty-1) a2=$(avail mtty-2)
	mctl start -p mtty -t mtty-2 -u "$U1"
	tap_result "$rc" "[$cl] mdevctl start -p mtty -t mtty-2 -u $U1"
	[ "$rc" = 0 ] || show start -p mtty -t mtty-2 -u "$U1"
	t=$(dev_type "$U1") p=$(dev_parent "$U1")
	[ -d "$DEVS/$U1" ] && [ "$t" = mtty-2 ] && [ "$p" = mtty ]
	tap_result $? "[$cl] $DEVS/$U1 exists, mdev_type mtty-2, parent mtty (got type '$t', parent '$p')"
	b2=$(avail mtty-2) b1=$(avail mtty-1)
	[ "$a2" = 12 ] && [ "$b2" = 11 ]
	tap_result $? "[$cl] mtty-2 available_instances 12 -> 11 (got $a2 -> $b2)"
	[ "$a1" = 24 ] && [ "$b1" = 22 ]
	tap_result $? "[$cl] mtty-1 available_instances 24 -> 22 (got $a1 -> $b1; ports are shared)"
	check_json "[$cl] mdevctl list --dumpjson: exactly $U1 on mtty, mtty-2, manual" \
		"$(list_json "$U1" mtty-2 manual)" list --dumpjson
	check_text "[$cl] mdevctl list: '$U1 mtty mtty-2 manual'" \
		"$U1 mtty mtty-2 manual" list

	# c. error paths
	mctl start -p mtty -t mtty-2 -u "$U1"
	[ "$rc" != 0 ] && [ "$(dev_list)" = "$U1" ] && [ "$(avail mtty-2)" = 11 ]
	tap_result $? "[$cl] mdevctl start of the same UUID again fails (exit $rc: ${err:-no message}), nothing changes"
	mctl start -p mtty -t mtty-9 -u "$U3"
	[ "$rc" != 0 ] && [ "$(dev_list)" = "$U1" ] && [ "$(avail mtty-2)" = 11 ]
	tap_result $? "[$cl] mdevctl start with type mtty-9 fails (exit $rc: ${err:-no message}), nothing created"
	mctl start -p nosuchparent -t mtty-2 -u "$U3"
	[ "$rc" != 0 ] && [ "$(dev_list)" = "$U1" ]
	tap_result $? "[$cl] mdevctl start with parent nosuchparent fails (exit $rc: ${err:-no message}), nothing created"

	# d. stop
	mctl stop -u "$U1"
	[ "$rc" = 0 ] && [ ! -e "$DEVS/$U1" ] && [ -z "$(dev_list)" ]
	tap_result $? "[$cl] mdevctl stop -u $U1 removes it (exit $rc, devices: '$(dev_list)')"
	[ "$rc" = 0 ] || show stop -u "$U1"
	[ "$(avail mtty-2)" = 12 ] && [ "$(avail mtty-1)" = 24 ]
	tap_result $? "[$cl] available_instances back to mtty-1 24, mtty-2 12 (got $(avail mtty-1), $(avail mtty-2))"
	check_json "[$cl] mdevctl list --dumpjson after stop: []" "[]" list --dumpjson
	check_text "[$cl] mdevctl list after stop: empty" "" list

	# e. persistence + autostart
	mctl define --auto -p mtty -t mtty-1 -u "$U2"
	f=$CONF/mtty/$U2
	[ "$rc" = 0 ] && [ -f "$f" ] &&
		json_same "$(cat "$f")" '{"mdev_type": "mtty-1", "start": "auto", "attrs": []}'
	tap_result $? "[$cl] mdevctl define --auto writes $f = {mdev_type: mtty-1, start: auto, attrs: []}"
	[ -f "$f" ] && cat "$f" | diag
	[ "$rc" = 0 ] || show define --auto -p mtty -t mtty-1 -u "$U2"
	check_json "[$cl] mdevctl list --defined --dumpjson: $U2 mtty-1 auto" \
		"$(list_json "$U2" mtty-1 auto)" list --defined --dumpjson
	check_text "[$cl] mdevctl list --defined: '$U2 mtty mtty-1 auto' (not active)" \
		"$U2 mtty mtty-1 auto" list --defined
	check_json "[$cl] define does not start: mdevctl list --dumpjson is []" "[]" list --dumpjson

	# reload the mtty sample with the kernel's uevents recorded
	udevadm monitor --kernel --property --subsystem-match=mtty >"$tmp/uevents" 2>&1 &
	mon_pid=$!
	for _ in $(seq 50); do grep -q 'monitor will print' "$tmp/uevents" && break; sleep 0.1; done
	sleep 0.2
	modprobe -r "$impl" && [ ! -d /sys/class/mdev_bus/mtty ] && modprobe "$impl"
	tap_result $? "[$cl] modprobe -r $impl; modprobe $impl"
	t0=$(date +%s%N)
	deadline=$(($(date +%s) + autostart_timeout))
	while [ ! -e "$DEVS/$U2" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
	ms=$((($(date +%s%N) - t0) / 1000000))
	t=$(dev_type "$U2") p=$(dev_parent "$U2")
	[ -d "$DEVS/$U2" ] && [ "$t" = mtty-1 ] && [ "$p" = mtty ]
	tap_result $? "[$cl] udev autostarts $U2 (type '$t', parent '$p') after ${ms} ms (limit ${autostart_timeout} s)"
	if [ ! -e "$DEVS/$U2" ]; then
		# the rule's output goes to logger, which has no syslog here: redo it by hand
		mctl start-parent-mdevs mtty
		show start-parent-mdevs mtty
	fi
	udevadm settle --timeout=30
	stop_monitor
	reg=$(awk -v RS= '/ACTION=change/ && /DEVPATH=\/devices\/virtual\/mtty\/mtty(\n|$)/ && /MDEV_STATE=registered/ {c++} END {print c+0}' "$tmp/uevents")
	unreg=$(awk -v RS= '/ACTION=change/ && /DEVPATH=\/devices\/virtual\/mtty\/mtty(\n|$)/ && /MDEV_STATE=unregistered/ {c++} END {print c+0}' "$tmp/uevents")
	[ "$reg" = 1 ] && [ "$unreg" = 1 ]
	tap_result $? "[$cl] kernel uevents for /devices/virtual/mtty/mtty: one change MDEV_STATE=unregistered ($unreg), one MDEV_STATE=registered ($reg)"
	[ "$reg" = 1 ] && [ "$unreg" = 1 ] || diag <"$tmp/uevents"
	check_json "[$cl] mdevctl list --dumpjson after reload: $U2 mtty-1 auto" \
		"$(list_json "$U2" mtty-1 auto)" list --dumpjson
	mctl stop -u "$U2"
	[ "$rc" = 0 ] && [ ! -e "$DEVS/$U2" ]
	tap_result $? "[$cl] mdevctl stop -u $U2 (exit $rc)"
	[ "$rc" = 0 ] || show stop -u "$U2"
	mctl undefine -u "$U2"
	[ "$rc" = 0 ] && [ ! -e "$f" ]
	tap_result $? "[$cl] mdevctl undefine -u $U2 removes $f (exit $rc)"
	[ "$rc" = 0 ] || show undefine -u "$U2"

	# f. nothing left
	mctl list --dumpjson
	l=$out lrc=$rc
	mctl list --defined --dumpjson
	[ -z "$(dev_list)" ] && [ "$lrc" = 0 ] && json_same "$l" "[]" &&
		[ "$rc" = 0 ] && json_same "$out" "[]" && [ -z "$(ls "$CONF/mtty" 2>/dev/null)" ]
	tap_result $? "[$cl] at the end: no mdevs ('$(dev_list)'), mdevctl list and list --defined are []"

	cleanup_core
	left=
	for m in mdev mdev_c $MDEV_MTTY_COMPAT; do [ -d "/sys/module/$m" ] && left+=" $m"; done
	[ -z "$left" ]
	tap_result $? "[$cl] unload core + $impl${left:+ (still loaded:$left)}"
done

# The display types on the Rust core, whose type directories of the Rust mdpy
# and mbochs have the class attributes (class, fb_length, resolution,
# heads): mdevctl lists them exactly as it lists the C samples' types.
if [[ " ${cores[*]} " == *" mdev "* ]] && [[ " ${impls[*]} " == *" mtty_rs "* ]]; then
	for pair in mdpy:mdpy_rs mbochs:mbochs_rs; do
		c=${pair%%:*} r=${pair#*:}
		declare -A listing=()
		cls=
		for m in "$c" "$r"; do
			MDEV_CORE=mdev MDEV_SAMPLES=$m mdev_load >/dev/null 2>&1
			mctl types --dumpjson
			listing[$m]=$(norm <<<"$out" 2>/dev/null)
			[ "$rc" = 0 ] || show types --dumpjson
			[ "$m" = "$r" ] &&
				cls=$(cat /sys/class/mdev_bus/"$c"/mdev_supported_types/*/class 2>&1 | sort -u)
			MDEV_CORE=mdev MDEV_SAMPLES=$m mdev_unload
		done
		[ -n "${listing[$c]}" ] && [ "${listing[$c]}" = "${listing[$r]}" ] &&
			grep -q "\"$c-" <<<"${listing[$c]}" && [ "$cls" = gpu ]
		tap_result $? "[core=mdev] mdevctl types --dumpjson: $r (types of class '$cls') lists as $c"
		[ "${listing[$c]}" = "${listing[$r]}" ] ||
			diff <(echo "${listing[$c]}") <(echo "${listing[$r]}") | diag
		unset listing
	done
	mdev_unload_all >/dev/null
fi

echo "1..$n"
echo "$name: $pass passed, $fail failed"
[ "$fail" = 0 ] && [ "$n" -gt 0 ]
