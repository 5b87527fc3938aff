// SPDX-License-Identifier: GPL-2.0
// expect: error(\[E0521\])?: (borrowed data escapes|lifetime may not live long enough)
// The mappings of a request are only lent to `DmaParent::map`'s closure: a driver cannot keep
// (or forget) them, so they are always undone, and an unbind never waits for a mapping that
// nothing will drop.

legal_in_probe!();

legal_in_attribute!();

#[allow(dead_code)]
fn keep_the_mapping<'a>(
    parent: &'a vfio::dma::DmaParent,
    request: &'a vfio::Mapping<'a>,
) -> Result<Option<&'a vfio::dma::DmaMapped<'a>>> {
    let mut kept = None;
    parent.map(request, kernel::dma::DataDirection::ToDevice, |mapped| {
        kept = Some(mapped);
    })?;
    Ok(kept)
}
