#!/bin/sh
# Custom action, before PrepareMerge, on the Upgrade side: the host driver runs it inside
# the Upgrade side's namespace, with the Upgrade side's tree first on PATH and the data
# directory hidden. Exits non-zero (the step goes Broken) if the upgraded orderdesk does not
# import, or if the data directory is visible from here.
set -eu
echo "verify-upgrade-side: $ACTIVE_UPGRADE_REQUEST on the $ACTIVE_UPGRADE_SIDE side ($ACTIVE_UPGRADE_STATE)"
python -c 'import orderdesk, sys; print("orderdesk", orderdesk.__version__, "from", sys.prefix)'
if [ -n "$(ls -A "$FTKIT_DATA" 2>/dev/null)" ]; then
    echo "the data directory $FTKIT_DATA is visible on the Upgrade side" >&2
    exit 1
fi
echo "data directory hidden: ok"
