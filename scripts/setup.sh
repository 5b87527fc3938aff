#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything the build and the VM runner need on a Debian bookworm
# machine.  Idempotent: each step checks first and does nothing when the tool
# is already there, so a warm run costs a second or two.
#
# Environment:
#   VNG_VENV    where virtme-ng is installed (default /opt/mdev-rs/virtme-ng-<ver>)
#   KERNEL_DEB  a local copy of the pinned linux-source-<series> .deb, used
#               only when Debian does not give it (said loudly)
#   KSRC_DIR    where the kernel tarball is kept (default /opt/mdev-rs/src)
set -euo pipefail

repo=$(realpath "$(dirname "$0")/..")
# shellcheck source=../config/kernel.env
. "$repo/config/kernel.env"

VNG_VERSION=1.42
MDEVCTL_VERSION=1.4.0
MDEVCTL_ROOT=/opt/mdev-rs/mdevctl-$MDEVCTL_VERSION # the guest scripts' default
BINDGEN_VERSION=0.72.1
LLVM_VERSION=19
VNG_VENV=${VNG_VENV:-/opt/mdev-rs/virtme-ng-$VNG_VERSION}
KSRC_DIR=${KSRC_DIR:-/opt/mdev-rs/src}
LIBCLANG_DIR=/usr/lib/llvm-$LLVM_VERSION/lib

APT_PACKAGES=(
	rustc-web rust-web-src rust-web-clippy rustfmt-web
	clang-$LLVM_VERSION lld-$LLVM_VERSION llvm-$LLVM_VERSION libclang-$LLVM_VERSION-dev
	bc flex bison libelf-dev libssl-dev cpio kmod rsync xz-utils make gcc libc6-dev
	qemu-system-x86 mdevctl udev
	python3 python3-venv python3-docutils
)

say() { printf '==> setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

# 1. Debian packages (bookworm).
missing=()
for p in "${APT_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing Debian packages: ${missing[*]}"
	as_root apt-get update -q ||
		die "apt-get update failed (are the default Debian sources reachable?)"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${missing[@]}" ||
		die "apt-get install failed for: ${missing[*]}"
else
	say "Debian packages present"
fi
[ -x /usr/bin/rustc ] || die "/usr/bin/rustc missing (package rustc-web)"
[ -e "$LIBCLANG_DIR/libclang.so" ] || [ -e "$LIBCLANG_DIR/libclang.so.1" ] ||
	die "$LIBCLANG_DIR/libclang.so missing (package libclang-$LLVM_VERSION-dev)"

# 1b. QEMU 10.0 and libvirt 11.3 from bookworm-backports: VFIO migration v2
#     with device dirty tracking (QEMU 7.2 speaks only the v1 protocol), the
#     iommufd backend, and a libvirt that manages mdevs through mdevctl and
#     assigns them to domains (libvirtd with its QEMU and node-device
#     drivers: Debian's 11.3 packages have no modular virtqemud or
#     virtnodedevd; the client virsh).  The suite is added with a pin that takes only these
#     packages and the firmware QEMU needs (seabios >> 1.16.3) from it: every
#     other package, systemd and udev included, keeps bookworm's version
#     (backports stay at priority 100).  QEMU 10 replaces bookworm's 7.2,
#     which ran the test VM and the nested guest before.
QEMU_BPO_PACKAGES="qemu-system-x86 qemu-system-common qemu-system-data seabios"
LIBVIRT_BPO_PACKAGES="libvirt0 libvirt-common libvirt-clients libvirt-daemon-common
	libvirt-daemon libvirt-daemon-log libvirt-daemon-driver-qemu libvirt-daemon-driver-nodedev"
LIBVIRT_BPO_PACKAGES=$(echo $LIBVIRT_BPO_PACKAGES)
bpo_list=/etc/apt/sources.list.d/mdev-rs-bookworm-backports.sources
bpo_pref=/etc/apt/preferences.d/mdev-rs-from-backports
bpo_pref_old=/etc/apt/preferences.d/mdev-rs-qemu-from-backports # QEMU only, before libvirt
bpo_list_text="# mdev-rs (scripts/setup.sh): QEMU 10 and libvirt 11 only, see $bpo_pref
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
bpo_pref_text="# mdev-rs (scripts/setup.sh): only QEMU, its firmware and libvirt from bookworm-backports
Package: $QEMU_BPO_PACKAGES $LIBVIRT_BPO_PACKAGES
Pin: release n=bookworm-backports
Pin-Priority: 990"
pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
bpo_ok() { # every package from bookworm-backports, QEMU 10.0, libvirt 11.3, the pin as written
	local p
	for p in $QEMU_BPO_PACKAGES $LIBVIRT_BPO_PACKAGES; do
		[[ "$(pkg_version $p)" == *~bpo12+* ]] || return 1
	done
	[[ "$(pkg_version qemu-system-x86)" == 1:10.0.* ]] &&
		[[ "$(pkg_version libvirt-daemon)" == 11.3.* ]] &&
		[ -f "$bpo_pref" ] && [ "$(cat "$bpo_pref")" = "$bpo_pref_text" ] && [ ! -e "$bpo_pref_old" ]
}
if bpo_ok; then
	say "QEMU $(pkg_version qemu-system-x86) and libvirt $(pkg_version libvirt0) (bookworm-backports) present"
else
	say "installing QEMU 10.0 and libvirt 11.3 from bookworm-backports (pinned: $QEMU_BPO_PACKAGES $LIBVIRT_BPO_PACKAGES)"
	printf '%s\n' "$bpo_list_text" | as_root tee "$bpo_list" >/dev/null
	printf '%s\n' "$bpo_pref_text" | as_root tee "$bpo_pref" >/dev/null
	as_root rm -f "$bpo_pref_old"
	as_root apt-get update -q || die "apt-get update failed (bookworm-backports)"
	# shellcheck disable=SC2086
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends $QEMU_BPO_PACKAGES $LIBVIRT_BPO_PACKAGES ||
		die "apt-get install of QEMU 10 / libvirt 11 from bookworm-backports failed"
	[[ "$(pkg_version qemu-system-x86)" == 1:10.0.* ]] ||
		die "qemu-system-x86 is $(pkg_version qemu-system-x86) after the install, not 10.0 from bookworm-backports"
	[[ "$(pkg_version libvirt-daemon-driver-qemu)" == 11.3.* ]] ||
		die "libvirt is $(pkg_version libvirt-daemon-driver-qemu) after the install, not 11.3 from bookworm-backports"
	bpo_ok || die "after the install, not every one of $QEMU_BPO_PACKAGES $LIBVIRT_BPO_PACKAGES is from bookworm-backports"
fi

# 2. The kernel source: Debian's linux-source-$KERNEL_SERIES, version
#    $KERNEL_DEB_VERSION, from $KERNEL_SUITE, fetched with a private sources
#    list and state directory so that the machine's own apt configuration
#    (bookworm) is never touched.  apt-get download checks the package against
#    the suite's signed index.
pkg=linux-source-$KERNEL_SERIES
tarball=$KSRC_DIR/${pkg}_$KERNEL_DEB_VERSION.tar.xz
# A subshell, so that its EXIT trap removes the work folder on every path
# (die included) and nothing leaks into the rest of the script.
fetch_kernel_source() (
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	deb= why=
	mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/x"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $KERNEL_SUITE main" \
		> "$work/sources.list"
	apt_priv=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=-
		-o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
		-o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1)
	say "fetching $pkg $KERNEL_DEB_VERSION from Debian ($KERNEL_SUITE)"
	if ! apt-get "${apt_priv[@]}" update -q >"$work/update.log" 2>&1; then
		sed 's/^/  /' "$work/update.log" >&2
		why="apt-get update of $KERNEL_SUITE failed (network? see above)"
	else
		# every version the suite lists (madison ignores the host's apt pins)
		vers=$(apt-cache "${apt_priv[@]}" madison "$pkg" 2>/dev/null |
			awk '{print $3}' | tr '\n' ' ') || vers=
		if [ -z "${vers// /}" ]; then
			why="Debian does not publish $pkg in $KERNEL_SUITE any more"
		elif ! awk -v want="$KERNEL_DEB_VERSION" '$0 == want {f = 1} END {exit !f}' \
			<<<"$(tr ' ' '\n' <<<"$vers")"; then
			why="Debian publishes $pkg ${vers% } in $KERNEL_SUITE, not the pinned $KERNEL_DEB_VERSION"
		elif ! (cd "$work" && apt-get "${apt_priv[@]}" download -q "$pkg=$KERNEL_DEB_VERSION" \
			>"$work/download.log" 2>&1); then
			sed 's/^/  /' "$work/download.log" >&2
			why="apt-get download $pkg=$KERNEL_DEB_VERSION failed (see above)"
		else
			deb=$(find "$work" -maxdepth 1 -name "${pkg}_*.deb")
			if [ -n "$deb" ]; then
				say "downloaded $(basename "$deb")"
			else
				why="apt-get download $pkg=$KERNEL_DEB_VERSION wrote no .deb"
			fi
		fi
	fi
	if [ -z "$deb" ]; then
		if [ -n "${KERNEL_DEB:-}" ]; then
			[ -f "$KERNEL_DEB" ] || die "KERNEL_DEB=$KERNEL_DEB: no such file"
			say "WARNING: $why."
			say "WARNING: using the local copy KERNEL_DEB=$KERNEL_DEB instead."
			say "WARNING: if Debian moved on, update config/kernel.env to what it publishes."
			deb=$KERNEL_DEB
		else
			die "$why.
  The project pins $pkg $KERNEL_DEB_VERSION from $KERNEL_SUITE (config/kernel.env).
  Either update config/kernel.env to the version Debian publishes now, or set
  KERNEL_DEB=<path to ${pkg}_${KERNEL_DEB_VERSION}_all.deb> to use a local copy."
		fi
	fi
	dpkg-deb --field "$deb" Package 2>/dev/null | grep -qxF "$pkg" ||
		die "$deb is not a $pkg package"
	dpkg-deb --field "$deb" Version | grep -qxF "$KERNEL_DEB_VERSION" ||
		die "$deb is version $(dpkg-deb --field "$deb" Version), config/kernel.env pins $KERNEL_DEB_VERSION"
	dpkg-deb -x "$deb" "$work/x"
	src_tar=$(find "$work/x/usr/src" -maxdepth 1 -name "$pkg.tar.xz")
	[ -n "$src_tar" ] || die "$deb has no /usr/src/$pkg.tar.xz"
	as_root mkdir -p "$KSRC_DIR"
	as_root cp "$src_tar" "$tarball.tmp"
	as_root mv "$tarball.tmp" "$tarball"
	say "kernel source: $tarball"
)
if [ ! -f "$tarball" ]; then
	fetch_kernel_source
else
	say "kernel source present: $tarball"
fi

# 3. bindgen from crates.io (the kernel runs it to generate `bindings`).  It
#    loads libclang at run time; the Makefile pins it with LIBCLANG_PATH.
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin
bindgen_ok() {
	LIBCLANG_PATH=$LIBCLANG_DIR "$CARGO_BIN/bindgen" --version 2>/dev/null |
		grep -q "^bindgen $BINDGEN_VERSION\$"
}
if ! bindgen_ok; then
	command -v cargo >/dev/null || [ -x "$CARGO_BIN/cargo" ] ||
		die "cargo not found: install rustup's cargo or Debian's cargo to build bindgen-cli"
	say "cargo install bindgen-cli $BINDGEN_VERSION (takes ~5 minutes once)"
	PATH=$CARGO_BIN:$PATH LIBCLANG_PATH=$LIBCLANG_DIR \
		cargo install --locked --force bindgen-cli --version "=$BINDGEN_VERSION" ||
		die "cargo install bindgen-cli failed"
	bindgen_ok || die "bindgen in $CARGO_BIN is not $BINDGEN_VERSION"
else
	say "bindgen $BINDGEN_VERSION present"
fi

# 4. virtme-ng (the VM runner) in its own venv.
if ! "$VNG_VENV/bin/vng" --version 2>/dev/null | grep -q "$VNG_VERSION"; then
	say "installing virtme-ng $VNG_VERSION into $VNG_VENV"
	as_root mkdir -p "$(dirname "$VNG_VENV")"
	as_root /usr/bin/python3 -m venv "$VNG_VENV" || die "python3 -m venv failed"
	as_root "$VNG_VENV/bin/pip" install -q "virtme-ng==$VNG_VERSION" ||
		die "pip install virtme-ng==$VNG_VERSION failed"
else
	say "virtme-ng $VNG_VERSION present"
fi

# 5. Debian's mdevctl udev rule calls /usr/sbin/mdevctl; the package ships
#    /usr/bin/mdevctl.  The guest sees the host root, so link it here.
if [ ! -e /usr/sbin/mdevctl ]; then
	as_root ln -s /usr/bin/mdevctl /usr/sbin/mdevctl
fi

# 6. mdevctl $MDEVCTL_VERSION from crates.io, beside Debian's 1.2.0 (the
#    tests run both; the guest bind-mounts this one over /usr/bin/mdevctl
#    when it tests it).  Its build script makes the man page with rst2man
#    (python3-docutils).  It refuses to run without the callout and notifier
#    folders under /usr/lib/mdevctl/scripts.d, which its "make install"
#    creates and Debian's 1.2.0 package does not ship.
mdevctl_ok() {
	[ -d /usr/lib/mdevctl/scripts.d/callouts ] && [ -d /usr/lib/mdevctl/scripts.d/notifiers ] &&
		"$MDEVCTL_ROOT/bin/mdevctl" --version 2>/dev/null | grep -qx "mdevctl $MDEVCTL_VERSION"
}
if ! mdevctl_ok; then
	as_root mkdir -p /usr/lib/mdevctl/scripts.d/callouts /usr/lib/mdevctl/scripts.d/notifiers
	if ! "$MDEVCTL_ROOT/bin/mdevctl" --version 2>/dev/null | grep -qx "mdevctl $MDEVCTL_VERSION"; then
		command -v cargo >/dev/null || [ -x "$CARGO_BIN/cargo" ] ||
			die "cargo not found: install rustup's cargo or Debian's cargo to build mdevctl"
		say "cargo install mdevctl $MDEVCTL_VERSION into $MDEVCTL_ROOT (about a minute once)"
		# cargo runs as the caller (whose toolchain it is), into a folder it owns
		as_root install -d -o "$(id -u)" -g "$(id -g)" "$MDEVCTL_ROOT"
		PATH=$CARGO_BIN:$PATH cargo install --locked --force --root "$MDEVCTL_ROOT" \
			mdevctl --version "=$MDEVCTL_VERSION" ||
			die "cargo install mdevctl $MDEVCTL_VERSION failed"
	fi
	mdevctl_ok || die "$MDEVCTL_ROOT/bin/mdevctl does not run as mdevctl $MDEVCTL_VERSION"
	say "mdevctl $MDEVCTL_VERSION: $MDEVCTL_ROOT/bin/mdevctl"
else
	say "mdevctl $MDEVCTL_VERSION present ($MDEVCTL_ROOT/bin/mdevctl)"
fi

say "ok"
