// SPDX-License-Identifier: GPL-2.0
// expect: error\[E0308\]: mismatched types
// S3: outside probe/remove a vendor has only `&mdev::Device` (no `Bound` context), so it cannot
// register a VFIO device there.

type Kept = ();

fn in_probe(m: &mdev::Device<Core<'_>>, p: &Kept) -> Result {
    let _ = (m.parent().device(), m.mdev_type().sysfs_name(), p);
    Ok(())
}

fn in_attribute(m: &mdev::Device) -> Result {
    let _r = vfio::Registration::new(m.device(), Nothing)?;
    Ok(())
}
