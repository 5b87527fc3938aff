#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything the build and the VM runner need on a Debian bookworm
# machine.  Idempotent: each step checks first and does nothing when the tool
# is already there, so a warm run costs a second or two.
#
# Environment:
#   VNG_VENV    where virtme-ng is installed (default /opt/mdev-rs/virtme-ng-<ver>)
#   KERNEL_DEB  a local copy of the linux-source-<series> .deb, used only when
#               Debian no longer publishes the series (said loudly)
#   KSRC_DIR    where the kernel tarball is kept (default /opt/mdev-rs/src)
set -euo pipefail

repo=$(realpath "$(dirname "$0")/..")
# shellcheck source=../config/kernel.env
. "$repo/config/kernel.env"

VNG_VERSION=1.42
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
	python3 python3-venv
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

# 2. The kernel source: Debian's linux-source-$KERNEL_SERIES from
#    $KERNEL_SUITES, fetched with a private sources list so that the machine's
#    own apt configuration (bookworm) is never touched.
pkg=linux-source-$KERNEL_SERIES
tarball=$KSRC_DIR/$pkg.tar.xz
if [ ! -f "$tarball" ]; then
	as_root mkdir -p "$KSRC_DIR"
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
	for s in $KERNEL_SUITES; do
		echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $s main"
	done > "$work/sources.list"
	apt_priv=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=-
		-o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
		-o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1)
	deb=
	say "fetching $pkg from Debian ($KERNEL_SUITES)"
	if apt-get "${apt_priv[@]}" update -q >"$work/update.log" 2>&1 &&
		ver=$(apt-cache "${apt_priv[@]}" policy "$pkg" | awk '/Candidate:/ {print $2}') &&
		[ -n "$ver" ] && [ "$ver" != "(none)" ]; then
		(cd "$work" && apt-get "${apt_priv[@]}" download -q "$pkg=$ver") ||
			die "apt-get download $pkg=$ver from $KERNEL_SUITES failed"
		deb=$(ls "$work"/"$pkg"_*.deb)
		say "downloaded $(basename "$deb") (checked against the suite's signed index)"
	elif [ -n "${KERNEL_DEB:-}" ]; then
		[ -f "$KERNEL_DEB" ] || die "KERNEL_DEB=$KERNEL_DEB: no such file"
		say "WARNING: Debian does not publish $pkg in $KERNEL_SUITES (any more)."
		say "WARNING: using the local copy KERNEL_DEB=$KERNEL_DEB instead."
		say "WARNING: the project must move to the series Debian publishes now."
		deb=$KERNEL_DEB
	else
		cat "$work/update.log" >&2 || true
		die "Debian does not publish $pkg in $KERNEL_SUITES (deb.debian.org).
  The project targets Linux $KERNEL_SERIES (config/kernel.env).  Either move to the
  series Debian publishes now, or set KERNEL_DEB=<path to ${pkg}_*.deb> to use a
  local copy of the package."
	fi
	dpkg-deb --info "$deb" >/dev/null || die "$deb is not a Debian package"
	dpkg-deb --field "$deb" Package | grep -qx "$pkg" || die "$deb is not $pkg"
	dpkg-deb -x "$deb" "$work/x"
	src_tar=$(ls "$work"/x/usr/src/"$pkg".tar.* | head -n1)
	[ -n "$src_tar" ] || die "$deb has no /usr/src/$pkg.tar.*"
	dpkg-deb --field "$deb" Version | as_root tee "$KSRC_DIR/$pkg.version" >/dev/null
	as_root mv "$src_tar" "$tarball.tmp"
	as_root mv "$tarball.tmp" "$tarball"
	say "kernel source: $tarball ($(cat "$KSRC_DIR/$pkg.version"))"
else
	say "kernel source present: $tarball ($(cat "$KSRC_DIR/$pkg.version" 2>/dev/null))"
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

say "ok"
