#!/bin/sh
# Custom action, after ExecuteMerge: orderdesk answers at the production address (the
# front, $FTKIT_PRODUCTION, set by the host driver) with the version given as argument.
set -eu
expected="$1"
python3 - "$FTKIT_PRODUCTION" "$expected" <<'PY'
import json, sys, urllib.request
address, expected = sys.argv[1:3]
with urllib.request.urlopen(f"http://{address}/health", timeout=30) as answer:
    version = json.loads(answer.read())["version"]
print(f"smoke-test: orderdesk {version} answers at {address}")
sys.exit(0 if version == expected else f"expected {expected}, got {version}")
PY
