// SPDX-License-Identifier: GPL-2.0

#include <linux/device.h>
#include <linux/dma-buf.h>
#include <linux/dma-direct.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/highmem.h>
#include <linux/iommu-dma.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/sched/signal.h>
#include <linux/swiotlb.h>

__rust_helper phys_addr_t rust_helper_page_to_phys(struct page *page)
{
	return page_to_phys(page);
}

/* Copies to and from pinned guest pages (kernel::vfio::pinmap::Mapping) */
__rust_helper void rust_helper_memcpy_from_page(char *to, struct page *page,
						size_t offset, size_t len)
{
	memcpy_from_page(to, page, offset, len);
}

__rust_helper void rust_helper_memcpy_to_page(struct page *page, size_t offset,
					      const char *from, size_t len)
{
	memcpy_to_page(page, offset, from, len);
}

__rust_helper void rust_helper_memset_page(struct page *page, size_t offset,
					   int val, size_t len)
{
	memset_page(page, offset, val, len);
}

/*
 * Whether dma_map_page() of @size bytes at @phys for @dev in direction @dir
 * maps them where they are (kernel::vfio::dma): an IOMMU or other DMA ops
 * allocate an address within the device's mask; the direct mapping needs the
 * bytes below it and no bounce buffer. What it would bounce through swiotlb
 * (forced bouncing, as in confidential guests; a non-coherent device's
 * unaligned buffer; bytes out of reach) is refused: swiotlb's buffer may be
 * out of reach as well, and the mapping then fails with a warning.
 */
__rust_helper bool rust_helper_dma_page_reachable(struct device *dev,
						 phys_addr_t phys, size_t size,
						 enum dma_data_direction dir)
{
	if (get_dma_ops(dev) || use_dma_iommu(dev))
		return true;
	if (is_swiotlb_force_bounce(dev) ||
	    dma_kmalloc_needs_bounce(dev, size, dir))
		return false;
	return dma_capable(dev, phys_to_dma(dev, phys), size, true, 0);
}

/* Whether @dev has a child device (kernel::vfio::dma::DmaParent::new) */
__rust_helper bool rust_helper_device_has_children(struct device *dev)
{
	struct device *child = device_find_any_child(dev);

	if (!child)
		return false;
	put_device(child);
	return true;
}

/* MSI or MSI-X is on: pci_dev->irq is not the INTx line (kernel::vfio::pci_irq) */
__rust_helper bool rust_helper_pci_dev_msi_enabled(struct pci_dev *pdev)
{
	return pci_dev_msi_enabled(pdev);
}

/* The calling task was killed (kernel::vfio::current_killed) */
__rust_helper bool rust_helper_current_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}

__rust_helper int rust_helper_dma_mapping_error(struct device *dev,
					       dma_addr_t addr)
{
	return dma_mapping_error(dev, addr);
}

/* A new reference on a dma-buf (kernel::vfio::dmabuf::DmaBuf::clone) */
__rust_helper void rust_helper_get_dma_buf(struct dma_buf *dmabuf)
{
	get_dma_buf(dmabuf);
}
