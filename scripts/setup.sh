#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything the build and the VM runner need on a Debian bookworm
# machine.  Idempotent: each step checks first and does nothing when the tool
# is already there, so a warm run costs a second or two.
#
# Environment:
#   VNG_VENV   where virtme-ng is installed (default /opt/mdev-rs/virtme-ng-<ver>)
set -euo pipefail

VNG_VERSION=1.42
BINDGEN_SERIES=0.69
VNG_VENV=${VNG_VENV:-/opt/mdev-rs/virtme-ng-$VNG_VERSION}

APT_PACKAGES=(
	linux-source-6.12
	rustc-web rust-web-src rust-web-clippy rustfmt-web
	clang lld llvm libclang-dev
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

# 1. Debian packages.
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
ls /usr/src/linux-source-6.12.tar.* >/dev/null 2>&1 ||
	die "linux-source-6.12 is installed but /usr/src/linux-source-6.12.tar.* is missing"
[ -x /usr/bin/rustc ] || die "/usr/bin/rustc missing (package rustc-web)"

# 2. bindgen 0.69.x from crates.io (the kernel runs it to generate `bindings`).
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin
bindgen_ok() {
	"$CARGO_BIN/bindgen" --version 2>/dev/null | grep -q "^bindgen $BINDGEN_SERIES\."
}
if ! bindgen_ok; then
	command -v cargo >/dev/null || [ -x "$CARGO_BIN/cargo" ] ||
		die "cargo not found: install rustup's cargo or Debian's cargo to build bindgen-cli"
	say "cargo install bindgen-cli $BINDGEN_SERIES.x (takes ~5 minutes once)"
	PATH=$CARGO_BIN:$PATH cargo install --locked bindgen-cli --version "^$BINDGEN_SERIES" ||
		die "cargo install bindgen-cli failed"
	bindgen_ok || die "bindgen in $CARGO_BIN is not $BINDGEN_SERIES.x"
else
	say "bindgen $("$CARGO_BIN/bindgen" --version | cut -d' ' -f2) present"
fi

# 3. virtme-ng (the VM runner) in its own venv.
if ! "$VNG_VENV/bin/vng" --version 2>/dev/null | grep -q "$VNG_VERSION"; then
	say "installing virtme-ng $VNG_VERSION into $VNG_VENV"
	as_root mkdir -p "$(dirname "$VNG_VENV")"
	as_root /usr/bin/python3 -m venv "$VNG_VENV" || die "python3 -m venv failed"
	as_root "$VNG_VENV/bin/pip" install -q "virtme-ng==$VNG_VERSION" ||
		die "pip install virtme-ng==$VNG_VERSION failed"
else
	say "virtme-ng $VNG_VERSION present"
fi

# 4. Debian's mdevctl udev rule calls /usr/sbin/mdevctl; the package ships
#    /usr/bin/mdevctl.  The guest sees the host root, so link it here.
if [ ! -e /usr/sbin/mdevctl ]; then
	as_root ln -s /usr/bin/mdevctl /usr/sbin/mdevctl
fi

say "ok"
