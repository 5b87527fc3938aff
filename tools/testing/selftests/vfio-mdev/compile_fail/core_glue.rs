// SPDX-License-Identifier: GPL-2.0
// expect: error\[E0432\]: unresolved import `kernel::mdev::core_impl`
// S1: the mdev core's glue is private to drivers/vfio/mdev/; the kernel crate has none.

#[allow(unused_imports)]
use kernel::mdev::core_impl;

legal_in_probe!();

legal_in_attribute!();
