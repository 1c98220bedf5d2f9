#!/bin/sh
# Soak probe (a custom action of kind "probe"): run every probe_every_s while the merged
# system is watched before the commit decision; exit 0 = healthy. A real one would send a
# test order through WebFront and check the answer.
echo "health: the merged system answers"
exit 0
