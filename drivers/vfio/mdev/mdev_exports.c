// SPDX-License-Identifier: GPL-2.0-only
/*
 * Exports of the Rust mdev core: the API of <linux/mdev.h>, defined in
 * mdev_main.rs and bus.rs, for C and Rust vendor drivers.  Plain
 * EXPORT_SYMBOL, as the C core.
 */

#include <linux/export.h>
#include <linux/mdev.h>

EXPORT_SYMBOL(mdev_register_parent);
EXPORT_SYMBOL(mdev_unregister_parent);
EXPORT_SYMBOL(mdev_register_driver);
EXPORT_SYMBOL(mdev_unregister_driver);
