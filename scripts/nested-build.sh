#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build what the QEMU end-to-end test (scripts/guest/qemu-e2e.sh) boots inside
# the test VM: a minimal nested guest kernel and a one-program initramfs.
# Idempotent and incremental: Kbuild rebuilds only what changed, the rest is
# rebuilt only when its inputs are newer than its output.
#
#   nested-build.sh [OUTDIR]        (default: <repo>/build/nested)
#
# Produces, in OUTDIR:
#   obj/arch/x86/boot/bzImage   the kernel (tinyconfig + config/nested.config)
#   obj/vmlinux                 the same kernel as an ELF with a PVH entry
#                               point (QEMU -kernel boots it without the
#                               bzImage decompressor)
#   init                        tools/testing/selftests/vfio-mdev/nested/init.c,
#                               static
#   initramfs.cpio              /init + /dev /proc /sys, uncompressed
#
# Environment: SRC (kernel source, default <repo>/build/linux-source-<series>, a
# clean tree used with O=), JOBS (nproc), CC_HOST (cc), CC_INIT (gcc).
set -u -o pipefail

repo=$(realpath "$(dirname "$0")/..")
out=${1:-$repo/build/nested}
. "$repo/config/kernel.env"
src=${SRC:-$repo/build/linux-source-$KERNEL_SERIES}
jobs=${JOBS:-$(nproc)}
frag=$repo/config/nested.config
init_c=$repo/tools/testing/selftests/vfio-mdev/nested/init.c

die() { echo "nested-build: $*" >&2; exit 1; }
[ -f "$src/Makefile" ] || die "no kernel source in $src (make prepare)"
[ -f "$frag" ] || die "no $frag"
[ -f "$init_c" ] || die "no $init_c"
mkdir -p "$out/obj" || die "cannot create $out/obj"
out=$(realpath "$out")
obj=$out/obj

kmake() { make -C "$src" O="$obj" ARCH=x86_64 LLVM=-19 "$@"; }

# 1. .config: tinyconfig + the fragment, regenerated only when the fragment
#    (or this script) is newer than the last successful configuration.
stamp=$obj/.nested-config-stamp
if [ ! -f "$obj/.config" ] || [ ! -f "$stamp" ] ||
	[ "$frag" -nt "$stamp" ] || [ "$0" -nt "$stamp" ]; then
	echo "==> nested: config: tinyconfig + $(basename "$frag")"
	kmake -s tinyconfig >/dev/null || die "tinyconfig failed"
	(cd "$obj" && "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" \
		"$obj/.config" "$frag" >/dev/null) || die "merge_config failed"
	kmake -s olddefconfig || die "olddefconfig failed"
	"$repo/scripts/check-config.sh" "$obj/.config" "$frag" || exit 1
	touch "$stamp"
fi

# 2. The kernel (vmlinux comes with the bzImage).
echo "==> nested: kernel ($jobs jobs) in $obj"
kmake -s -j"$jobs" bzImage || die "kernel build failed"

# 3. gen_init_cpio from the same tree, with the host compiler.
gen=$out/gen_init_cpio
if [ ! -x "$gen" ] || [ "$src/usr/gen_init_cpio.c" -nt "$gen" ]; then
	echo "==> nested: gen_init_cpio"
	${CC_HOST:-cc} -O2 -o "$gen" "$src/usr/gen_init_cpio.c" || die "gen_init_cpio build failed"
fi

# 4. The init program, static.
if [ ! -x "$out/init" ] || [ "$init_c" -nt "$out/init" ]; then
	echo "==> nested: init"
	${CC_INIT:-gcc} -static -O2 -Wall -Wextra -o "$out/init" "$init_c" ||
		die "init build failed"
fi

# 5. The initramfs: /dev/console must exist before devtmpfs is mounted, or
#    the kernel starts init without stdin/stdout/stderr.
list=$out/initramfs.list
cat >"$list.new" <<EOF
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /proc 0755 0 0
dir /sys 0755 0 0
file /init $out/init 0755 0 0
EOF
if cmp -s "$list.new" "$list"; then
	rm -f "$list.new"
else
	mv "$list.new" "$list"
fi
cpio=$out/initramfs.cpio
if [ ! -s "$cpio" ] || [ "$out/init" -nt "$cpio" ] || [ "$list" -nt "$cpio" ] ||
	[ "$gen" -nt "$cpio" ]; then
	echo "==> nested: initramfs"
	"$gen" "$list" >"$cpio.new" && mv "$cpio.new" "$cpio" || die "gen_init_cpio failed"
fi

echo "==> nested: done"
ls -l "$obj/arch/x86/boot/bzImage" "$obj/vmlinux" "$out/init" "$cpio" |
	awk '{ printf "    %10d  %s\n", $5, $NF }'
