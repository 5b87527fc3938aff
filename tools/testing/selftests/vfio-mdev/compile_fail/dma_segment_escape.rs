// SPDX-License-Identifier: GPL-2.0
// expect: error(\[E0521\])?: (borrowed data escapes|lifetime may not live long enough)
// A DMA address of a request cannot outlive its mapping: `DmaParent::map` unmaps when its
// closure returns, and a `DmaSegment` borrows the mapping, so it cannot be kept for a later
// transfer (to memory that may be unpinned and reused by then).

legal_in_probe!();

legal_in_attribute!();

#[allow(dead_code)]
fn keep_a_segment(
    parent: &vfio::dma::DmaParent,
    request: &vfio::Mapping<'_>,
) -> Result<Option<vfio::dma::DmaSegment<'static>>> {
    let mut kept = None;
    parent.map(request, kernel::dma::DataDirection::ToDevice, |mapped| {
        kept = mapped.segments().first().copied();
    })?;
    Ok(kept)
}
