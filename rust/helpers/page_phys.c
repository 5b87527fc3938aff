// SPDX-License-Identifier: GPL-2.0

#include <linux/highmem.h>
#include <linux/io.h>
#include <linux/mm.h>

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
