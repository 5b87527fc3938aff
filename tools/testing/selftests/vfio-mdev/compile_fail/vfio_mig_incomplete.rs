// SPDX-License-Identifier: GPL-2.0
// expect: migration needs mig_save, mig_load and mig_data_size
// A device that declares migration support must implement what makes it work: without
// `mig_save` and `mig_load` the VFIO core would offer userspace a state machine whose streams
// carry nothing, so the registration does not build.

struct Half;

#[vtable]
impl vfio::DeviceOps for Half {
    const NAME: &'static CStr = c_str!("cf-half");
    const MIGRATION_FLAGS: u32 = vfio::migration::flags::STOP_COPY;

    fn mig_data_size(_dev: &vfio::Device<Self>) -> usize {
        0
    }
}

type Kept = ();

fn in_probe(m: &mdev::Device<Core<'_>>, p: &Kept) -> Result {
    let _ = p;
    let _r = vfio::Registration::new(m.device(), Half)?;
    Ok(())
}

legal_in_attribute!();
