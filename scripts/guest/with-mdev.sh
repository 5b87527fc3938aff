#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Guest side of "make vm-run": load the mdev core and samples, then run the
# user's command.  See lib.sh for MDEV_CORE / MDEV_SAMPLES.
. "$(dirname "$0")/lib.sh"
mdev_load || exit 1
echo "# loaded: core=$MDEV_CORE samples=${MDEV_SAMPLES:-none}" >&2
exec "$@"
