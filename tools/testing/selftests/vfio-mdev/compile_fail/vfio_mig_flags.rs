// SPDX-License-Identifier: GPL-2.0
// expect: MIGRATION_FLAGS must be 0 or STOP_COPY with P2P and PRE_COPY only
// Migration flags the uAPI does not define as a device's (P2P without STOP_COPY): the VFIO
// core's state tables would be asked about states the device cannot reach, so the
// registration does not build.

struct Odd;

#[vtable]
impl vfio::DeviceOps for Odd {
    const NAME: &'static CStr = c_str!("cf-odd");
    const MIGRATION_FLAGS: u32 = vfio::migration::flags::P2P;
}

type Kept = ();

fn in_probe(m: &mdev::Device<Core<'_>>, p: &Kept) -> Result {
    let _ = p;
    let _r = vfio::Registration::new(m.device(), Odd)?;
    Ok(())
}

legal_in_attribute!();
