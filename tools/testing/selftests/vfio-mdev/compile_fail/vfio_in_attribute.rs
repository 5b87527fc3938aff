// SPDX-License-Identifier: GPL-2.0
// expect: error\[E0308\]: mismatched types
// S3: outside probe/remove a vendor has only `&mdev::Device` (no `Bound` context), so it cannot
// register a VFIO device there.

legal_in_probe!();

fn in_attribute(m: &mdev::Device) -> Result {
    let _r = vfio::Registration::new(m.device(), Nothing)?;
    Ok(())
}
