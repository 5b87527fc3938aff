// SPDX-License-Identifier: GPL-2.0
// expect: error\[E0599\]: no method named `available_counter`
// S1: a vendor cannot reach a parent's instance counter (or any other core operation).

type Kept = ();

fn in_probe(m: &mdev::Device<Core<'_>>, p: &Kept) -> Result {
    let _ = p;
    m.parent().available_counter();
    Ok(())
}

legal_in_attribute!();
