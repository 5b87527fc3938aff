#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fail when Kconfig dropped or changed an option a fragment asked for (an
# unmet dependency silently turns =y into "not set").
#
#   check-config.sh <.config> <fragment>...
set -euo pipefail

config=$1
shift
bad=0
for frag in "$@"; do
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			grep -qxF "$line" "$config" || {
				got=$(grep -E "^(# )?${line%%=*}[= ]" "$config" || echo "absent")
				echo "config: $(basename "$frag") wants $line, got: $got" >&2
				bad=1
			}
			;;
		"# CONFIG_"*" is not set")
			opt=${line#\# }
			opt=${opt%% *}
			if grep -qE "^$opt=" "$config"; then
				echo "config: $(basename "$frag") wants $opt unset, got: $(grep -E "^$opt=" "$config")" >&2
				bad=1
			fi
			;;
		esac
	done < "$frag"
done
[ $bad = 0 ] || { echo "config: fragments not satisfied (unmet dependencies?)" >&2; exit 1; }
