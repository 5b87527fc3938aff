// SPDX-License-Identifier: GPL-2.0
// expect: error\[E0432\]: unresolved import `kernel::mdev::core_impl`
// S1: the mdev core's glue is private to drivers/vfio/mdev/; the kernel crate has none.

#[allow(unused_imports)]
use kernel::mdev::core_impl;

type Kept = ();

fn in_probe(m: &mdev::Device<Core<'_>>, p: &Kept) -> Result {
    let _ = (m.parent().device(), m.mdev_type().sysfs_name(), p);
    Ok(())
}

fn in_attribute(m: &mdev::Device) -> Result {
    let _ = m.uuid();
    Ok(())
}
