# SPDX-License-Identifier: GPL-2.0
#
# mdev-rs: the VFIO mediated-device framework in Rust, as an overlay on
# Debian's Linux source (the series pinned in config/kernel.env).  This Makefile prepares the tree, builds it,
# boots it in QEMU (virtme-ng) and runs the kselftests there.
#
#   make test            set up, build, boot, run the suite (TAP + "N passed, N failed")
#   make demo            boot, create an mdev, show it, remove it
#   make vm-run CMD=...  run any command in the VM (core + samples loaded)
#   make help            everything else

REPO      := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BUILD     ?= $(REPO)/build
VARIANT   ?= default
include $(REPO)/config/kernel.env
SRC       := $(BUILD)/linux-source-$(KERNEL_SERIES)
OBJ       := $(BUILD)/obj-$(VARIANT)
JOBS      ?= $(shell nproc)

# Which config fragments make up a variant (on top of tinyconfig).
FRAGMENTS_default := config/vm.config config/rust.config config/kunit.config \
                     tools/testing/selftests/vfio-mdev/config config/mdev-rust.config
FRAGMENTS_debug   := $(FRAGMENTS_default) config/debug.config
FRAGMENTS_kasan   := config/vm.config config/rust.config \
                     tools/testing/selftests/vfio-mdev/config config/mdev-rust.config \
                     config/kasan.config
FRAGMENTS          = $(addprefix $(REPO)/,$(FRAGMENTS_$(VARIANT)))

# The toolchain: Debian's rustc-web (an exact rustc / rust-src pair),
# bookworm's clang/lld/llvm 19 and bindgen 0.72 from crates.io, which loads
# the libclang of LLVM 19 (pinned with LIBCLANG_PATH: with several libclang
# versions installed it would otherwise pick the newest).  Never rustup's rustc.
CARGO_BIN ?= $(HOME)/.cargo/bin
export LIBCLANG_PATH := /usr/lib/llvm-19/lib
KMAKE = $(MAKE) -C $(SRC) O=$(OBJ) ARCH=x86_64 LLVM=-19 \
	RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc HOSTRUSTC=/usr/bin/rustc \
	CLIPPY_DRIVER=/usr/bin/clippy-driver RUSTFMT=/usr/bin/rustfmt \
	BINDGEN=$(CARGO_BIN)/bindgen

SELFTEST_DIR := tools/testing/selftests/vfio-mdev
SELFTEST_OUT := $(OBJ)/kselftest/vfio-mdev

export VNG_VENV ?= /opt/mdev-rs/virtme-ng-1.42
# Emulated PCI devices of the test VM (vm-run.sh --device): QEMU's edu, the
# parent of mdma_edu (scripts/guest/edu-test.sh), once with a 32-bit DMA mask
# (all of the VM's 2 GiB) and once with a 24-bit one (refused requests);
# DEVICES= boots without them (and MDEV_EDU=0 leaves the edu checks out).
DEVICES   ?= edu,dma_mask=0xffffffff edu,dma_mask=0xffffff
VM_RUN = $(REPO)/scripts/vm-run.sh --kernel $(OBJ) --logdir $(BUILD)/logs \
	$(foreach d,$(DEVICES),--device $(d))

.PHONY: nested qemu-e2e clients all help setup prepare config rustavailable kernel selftests ext-modules build \
	test test-debug test-kasan compile-fail differential bench demo vm-run shell lint clean distclean

all: build

help:
	@sed -n 's/^#   //p' $(REPO)/Makefile; \
	echo "  make setup         install packages, bindgen, virtme-ng (idempotent)"; \
	echo "  make prepare       extract the kernel source, apply patches/, lay the overlay"; \
	echo "  make build         kernel + modules + selftests (incremental)"; \
	echo "  make shell         interactive shell in the VM"; \
	echo "  make lint          rustfmt --check + clippy build (CLIPPY=1), warnings fail"; \
	echo "  make qemu-e2e      only the QEMU end-to-end checks (legacy and iommufd, migrations)"; \
	echo "  make clients       only mdevctl 1.2.0 / 1.4.0 and libvirt, both cores"; \
	echo "  make differential  ABI dump of each core (mdev_c, mdev) in one boot, diffed"; \
	echo "  make bench         benchmarks, C core vs Rust core in one boot (BENCHMARKS.md)"; \
	echo "  make clean         remove the object dir of VARIANT; distclean: all of build/"; \
	echo "Variables: BUILD=$(BUILD) VARIANT=$(VARIANT) JOBS=$(JOBS) CMD= SHARE= TIMEOUT="

setup:
	@$(REPO)/scripts/setup.sh

prepare: setup
	@$(REPO)/scripts/prepare.sh $(REPO) $(SRC)

# Regenerate .config only when a fragment (or the tree) changed.
$(OBJ)/.config-stamp: $(FRAGMENTS) $(SRC)/.mdev-rs-prepared
	@echo "==> config: tinyconfig + $(notdir $(FRAGMENTS))"
	@mkdir -p $(OBJ)
	@$(KMAKE) -s tinyconfig >/dev/null
	@cd $(OBJ) && $(SRC)/scripts/kconfig/merge_config.sh -m -O $(OBJ) \
		$(OBJ)/.config $(FRAGMENTS) >/dev/null
	@$(KMAKE) -s olddefconfig
	@$(REPO)/scripts/check-config.sh $(OBJ)/.config $(FRAGMENTS)
	@touch $@

config: prepare
	@$(MAKE) -s -f $(REPO)/Makefile $(OBJ)/.config-stamp

rustavailable: config
	@out=$$($(KMAKE) -s rustavailable 2>&1); echo "$$out"; \
	echo "$$out" | grep -q "Rust is available!" || { \
		echo "error: the kernel does not accept this Rust toolchain (see above)." >&2; \
		echo "  expected /usr/bin/rustc (rustc-web), rust-web-src, $(CARGO_BIN)/bindgen 0.72.1, clang/libclang 19" >&2; \
		exit 1; }

kernel: rustavailable
	@echo "==> build: kernel and modules ($(JOBS) jobs) in $(OBJ)"
	@$(KMAKE) -j$(JOBS) bzImage modules
	@$(KMAKE) -s headers

# The upstream C core as an external module, mdev_c.ko (see Kbuild).
EXT_MDEV_C := $(OBJ)/ext/mdev_c
ext-modules: kernel
	@mkdir -p $(EXT_MDEV_C)
	@for f in mdev_core.c mdev_sysfs.c mdev_driver.c mdev_private.h; do \
		cmp -s $(SRC)/drivers/vfio/mdev/$$f $(EXT_MDEV_C)/$$f || \
			cp $(SRC)/drivers/vfio/mdev/$$f $(EXT_MDEV_C)/$$f; \
	done
	@cmp -s $(REPO)/Kbuild $(EXT_MDEV_C)/Kbuild || cp $(REPO)/Kbuild $(EXT_MDEV_C)/Kbuild
	@$(KMAKE) -s M=$(EXT_MDEV_C) modules

selftests: kernel
	@echo "==> build: kselftests $(SELFTEST_DIR)"
	@$(MAKE) -s -C $(SRC)/$(SELFTEST_DIR) OUTPUT=$(SELFTEST_OUT) \
		KHDR_INCLUDES="-isystem $(OBJ)/usr/include"

build: selftests ext-modules

# Rust style gates: rustfmt on the overlay's Rust files and a clippy build of
# every Rust crate (kernel crate with our abstractions, Rust modules).
# Clippy warnings fail it.  The next plain build recompiles the Rust objects.
RUST_OVERLAY = $(shell cd $(REPO) && find $(notdir $(wildcard $(REPO)/rust $(REPO)/drivers $(REPO)/samples)) -name "*.rs")
lint: rustavailable
	@echo "==> lint: rustfmt --check $(words $(RUST_OVERLAY)) overlay files"
	@cd $(REPO) && /usr/bin/rustfmt --edition 2021 --check \
		--config-path $(SRC)/.rustfmt.toml $(RUST_OVERLAY)
	@echo "==> lint: clippy build of the Rust crates"
	@$(KMAKE) -j$(JOBS) CLIPPY=1 bzImage modules 2>&1 | tee $(BUILD)/logs/clippy.log
	@! grep -qE '^(warning|error)' $(BUILD)/logs/clippy.log || \
		{ echo "lint: clippy reported warnings (see $(BUILD)/logs/clippy.log)" >&2; exit 1; }

TIMEOUT ?= 1800
# The minimal kernel and initramfs QEMU boots inside the test VM for the
# end-to-end check of the mtty devices (scripts/guest/qemu-e2e.sh).
NESTED := $(BUILD)/nested
nested: prepare
	@SRC=$(SRC) $(REPO)/scripts/nested-build.sh $(NESTED)

# Compile-fail tests of the safe API, built on the host against $(OBJ)
# (scripts/compile-fail.sh); make test counts their TAP in the guest.
CF_TAP := $(BUILD)/logs/compile-fail-$(VARIANT).tap
compile-fail: kernel
	@echo "==> compile-fail: $(SELFTEST_DIR)/compile_fail"
	@mkdir -p $(BUILD)/logs
	@$(REPO)/scripts/compile-fail.sh $(SRC)/$(SELFTEST_DIR)/compile_fail \
		$(OBJ)/compile_fail $(CF_TAP) $(KMAKE) -s

test: build nested
	@rm -f $(CF_TAP)
	@$(MAKE) -s -f $(REPO)/Makefile compile-fail || true
	@MDEV_COMPILE_FAIL_TAP=$(CF_TAP) MDEV_E2E_DIR=$(NESTED) $(VM_RUN) --timeout $(TIMEOUT) --summary -- \
		$(REPO)/scripts/guest/run-tests.sh $(SELFTEST_OUT)

# Only the QEMU end-to-end check: C mtty on the C core, Rust mtty on the Rust core.
qemu-e2e: build nested
	@MDEV_E2E_DIR=$(NESTED) $(VM_RUN) --timeout $(TIMEOUT) --summary -- \
		$(REPO)/scripts/guest/run-tests.sh --e2e-only $(SELFTEST_OUT)

# Only the client checks: mdevctl (Debian's 1.2.0 and 1.4.0) and libvirt,
# on both cores and mtty implementations.
clients: build nested
	@MDEV_E2E_DIR=$(NESTED) $(VM_RUN) --timeout $(TIMEOUT) --summary -- \
		$(REPO)/scripts/guest/run-tests.sh --clients-only $(SELFTEST_OUT)

# The debug kernels: config/debug.config (lockdep, DEBUG_OBJECTS, kmemleak),
# the whole suite plus a kmemleak scan; then test-kasan.
test-debug:
	@$(MAKE) -s -f $(REPO)/Makefile test VARIANT=debug
	@$(MAKE) -s -f $(REPO)/Makefile test-kasan

# config/kasan.config (KASAN + DEBUG_KOBJECT_RELEASE): the suite with the Rust
# samples only (mtty_rs, mdma, mdev_misuse) on both cores; the upstream C
# samples free kobjects with their module (see config/debug.config), and the
# nested QEMU check, mdevctl and libvirt (clients, not lifetimes) are left to the other
# variants. Every removal waits for deferred releases (1-3 s): a long run.
KASAN_TIMEOUT ?= 5400
test-kasan:
	@MDEV_SAMPLES=mtty_rs MDEV_MTTY_IMPLS=mtty_rs MDEV_DEMO_SAMPLE=mtty_rs MDEV_E2E=0 \
		MDEV_MDEVCTL=0 MDEV_LIBVIRT=0 $(MAKE) -s -f $(REPO)/Makefile test VARIANT=kasan TIMEOUT=$(KASAN_TIMEOUT)

# Benchmarks (BENCHMARKS.md): create/remove cycles and 10,000 mdevs on one
# parent, the C core and the Rust core alternating in one boot.
bench: build
	@VM_MEM=$${VM_MEM:-4G} $(VM_RUN) --timeout $(TIMEOUT) -- $(REPO)/scripts/guest/bench.sh

# Differential run in one boot: the ABI dump (mdev_dump) of each core in
# MDEV_DIFF_CORES (default "mdev_c mdev"), diffed; "differential: N differences".
differential: build
	@$(VM_RUN) --timeout $(TIMEOUT) -- $(REPO)/scripts/guest/differential.sh

demo: build nested
	@MDEV_E2E_DIR=$(NESTED) $(VM_RUN) --timeout $(TIMEOUT) -- $(REPO)/scripts/guest/demo.sh
	@ls -l $(BUILD)/logs/mdpy-screendump-*.png 2>/dev/null || true

# Run any command in the VM with the mdev core and the samples loaded.
# SHARE="dir1 dir2" makes host folders writable in the guest (the host root is
# visible read-only anyway).  CORE=none / SAMPLES="mtty" adjust what is loaded.
CMD ?= bash -i
vm-run: export VM_CMD = $(value CMD)
vm-run: build
	@$(VM_RUN) --timeout $(TIMEOUT) $(foreach d,$(SHARE),--rwdir $(abspath $(d))) -- \
		$(REPO)/scripts/guest/with-mdev.sh bash -c "$$VM_CMD"

shell:
	@$(MAKE) -s -f $(REPO)/Makefile vm-run CMD="bash -i" TIMEOUT=0

clean:
	rm -rf $(OBJ)

distclean:
	rm -rf $(BUILD)
