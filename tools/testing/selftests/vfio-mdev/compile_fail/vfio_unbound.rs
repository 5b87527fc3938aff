// SPDX-License-Identifier: GPL-2.0
// expect: error\[E0308\]: mismatched types
// S3: a VFIO device can only be registered on a bound device, not on any `&device::Device`
// (here: the parent, a class device without a driver).

type Kept = ();

fn in_probe(m: &mdev::Device<Core<'_>>, p: &Kept) -> Result {
    let _ = p;
    let _r = vfio::Registration::new(m.parent().device(), Nothing)?;
    Ok(())
}

legal_in_attribute!();
