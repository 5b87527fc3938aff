// SPDX-License-Identifier: GPL-2.0
// expect: error\[E0521\]: borrowed data escapes
// S3: the `Core` context of probe cannot be kept past probe: it is branded with the lifetime
// of the call.

type Kept = ();

/// Anything that keeps `T` past the call (a global, a work item, parent data) needs this.
fn keep<T: 'static>(_t: T) {}

fn in_probe(m: &mdev::Device<Core<'_>>, p: &Kept) -> Result {
    let _ = p;
    keep(m);
    Ok(())
}

legal_in_attribute!();
