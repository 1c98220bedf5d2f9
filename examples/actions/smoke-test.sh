#!/bin/sh
# Custom action: runs on the Upgrade side after ExecuteMerge, once the critical services
# run on the upgraded system disk. A real one would send a test order through WebFront and
# exit non-zero if it fails (the step goes Broken and the operator can abort).
echo "smoke-test: checking the merged system"
env | grep '^ACTIVE_UPGRADE_' | sort
exit 0
