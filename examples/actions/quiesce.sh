#!/bin/sh
# Custom action: runs on the Production side before ExecuteMerge.
# A real one would ask OrderDB to finish in-flight transactions and refuse new ones, so
# that the services stop quickly at merge. This demo prints what Active Upgrade tells it.
echo "quiesce-orderdb: quiescing OrderDB before merge"
env | grep '^ACTIVE_UPGRADE_' | sort
exit 0
