#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Prepare the kernel source tree: extract Debian's linux-source-<series> tarball
# (fetched by scripts/setup.sh; the series is pinned in config/kernel.env),
# apply patches/*.patch, then lay the project's overlay (the folders that
# mirror kernel paths) over it.
#
#   prepare.sh <repo-dir> <src-dir>
#
# Incremental by design: the overlay is copied with rsync --checksum and
# without preserving times, so only files whose content changed are rewritten
# (and get a fresh mtime); Kbuild then rebuilds exactly what depends on them.
# Files that left the overlay are restored from the tarball or deleted.  A
# change to the tarball or to the patch set re-extracts the tree.
set -euo pipefail

repo=$(realpath "$1")
src=$2
overlay_dirs=(rust drivers samples Documentation tools include)

say() { printf '==> prepare: %s\n' "$*"; }

# shellcheck source=../config/kernel.env
. "$repo/config/kernel.env"
tarball=${KSRC_DIR:-/opt/mdev-rs/src}/linux-source-${KERNEL_SERIES}_$KERNEL_DEB_VERSION.tar.xz
[ -f "$tarball" ] || { echo "prepare: no $tarball; run scripts/setup.sh" >&2; exit 1; }
topdir=linux-source-$KERNEL_SERIES

# What the tree was made from: the tarball's content (setup.sh checked the
# package against Debian's signed index, or took KERNEL_DEB) + every patch's
# content.  Hashing 160 MB costs about half a second per make.
stamp_want=$( {
	echo "$KERNEL_SERIES $KERNEL_DEB_VERSION"
	sha256sum < "$tarball"
	# names and contents, not the clone's path (CI clones elsewhere)
	for p in "$repo"/patches/*.patch; do
		if [ -e "$p" ]; then echo "$(basename "$p") $(sha256sum <"$p")"; fi
	done
} | sha256sum | cut -d' ' -f1)
stamp_file=$src/.mdev-rs-prepared

if [ ! -f "$stamp_file" ] || [ "$(cat "$stamp_file")" != "$stamp_want" ]; then
	say "extracting $(basename "$tarball") into $src"
	rm -rf "$src" "$src.tmp"
	mkdir -p "$src.tmp"
	tar -xf "$tarball" -C "$src.tmp"
	mv "$src.tmp/$topdir" "$src"
	rmdir "$src.tmp"
	for p in "$repo"/patches/*.patch; do
		[ -e "$p" ] || continue
		say "applying patches/$(basename "$p")"
		patch -d "$src" -p1 --quiet --forward < "$p"
	done
	rm -f "$src/.mdev-rs-overlay.list"
	echo "$stamp_want" > "$stamp_file"
	say "kernel $(make -s -C "$src" kernelversion)"
fi

# Overlay.
new_list=$(mktemp)
trap 'rm -f "$new_list"' EXIT
(cd "$repo" && for d in "${overlay_dirs[@]}"; do
	if [ -d "$d" ]; then find "$d" -type f -o -type l; fi
done) | sort > "$new_list"

old_list=$src/.mdev-rs-overlay.list
if [ -f "$old_list" ]; then
	comm -23 "$old_list" "$new_list" | while read -r f; do
		if tar -tf "$tarball" "$topdir/$f" >/dev/null 2>&1; then
			say "restoring $f from the tarball"
			tar -xf "$tarball" -C "$src" --strip-components=1 "$topdir/$f"
			touch "$src/$f"
		else
			say "removing $f (left the overlay)"
			rm -f "$src/$f"
		fi
	done
fi

changed=$(cd "$repo" && rsync -rl --checksum --out-format='%n' \
	--files-from="$new_list" . "$src/" | grep -v '/$' || true)
if [ -n "$changed" ]; then
	printf '%s\n' "$changed" | sed 's/^/==> prepare: overlay /'
fi
cp "$new_list" "$old_list"
