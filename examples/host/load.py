"""A steady load on a host:// site, recording every acknowledged transaction.

    python examples/host/load.py examples/host/site.toml [--rate 20] [--seconds N]

Sends ``POST /orders {"txn": ID}`` to the site's production address (the front), one
request per connection, at RATE a second, until SIGTERM/SIGINT or N seconds. Each
acknowledged transaction goes into the ledger (``acks``: txn, t), each failed request into
``failures`` (t, error): the host driver reads them for acknowledged(), outages() and
lost_transactions(). Prints a summary line at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import sqlite3
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ftkit.host.site import load_site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="load.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site", type=Path)
    parser.add_argument("--rate", type=float, default=20.0, help="requests a second")
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after (0: never)")
    parser.add_argument("--timeout", type=float, default=70.0, help="per request")
    args = parser.parse_args(argv)
    site = load_site(args.site.resolve())
    site.ledger.parent.mkdir(parents=True, exist_ok=True)
    ledger = sqlite3.connect(site.ledger, isolation_level=None, timeout=30)
    ledger.execute("PRAGMA journal_mode=WAL")
    ledger.execute("CREATE TABLE IF NOT EXISTS acks (txn TEXT PRIMARY KEY, t REAL NOT NULL, "
                   "sent REAL NOT NULL, version TEXT)")
    ledger.execute("CREATE TABLE IF NOT EXISTS failures (t REAL NOT NULL, txn TEXT, "
                   "error TEXT)")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    run = uuid.uuid4().hex[:8]
    interval = 1.0 / args.rate
    started = time.monotonic()
    acked = failed = 0
    last_ack = None
    longest = 0.0
    seq = 0
    while not stopping and not (args.seconds and time.monotonic() - started >= args.seconds):
        seq += 1
        txn = f"{run}-{seq}"
        sent = time.time()
        try:
            conn = http.client.HTTPConnection(site.production_host, site.production_port,
                                              timeout=args.timeout)
            conn.request("POST", "/orders", json.dumps({"txn": txn}),
                         {"Content-Type": "application/json", "Connection": "close"})
            answer = conn.getresponse()
            body = answer.read()
            conn.close()
            if answer.status != 201:
                raise OSError(f"HTTP {answer.status}: {body[:80]!r}")
            version = json.loads(body).get("version")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            failed += 1
            ledger.execute("INSERT INTO failures VALUES (?, ?, ?)",
                           (time.time(), txn, f"{type(exc).__name__}: {exc}"))
        else:
            now = time.time()
            ledger.execute("INSERT INTO acks VALUES (?, ?, ?, ?)", (txn, now, sent, version))
            if last_ack is not None:
                longest = max(longest, now - last_ack)
            last_ack = now
            acked += 1
        time.sleep(max(0.0, interval - (time.time() - sent)))
    ledger.close()
    print(json.dumps({"acknowledged": acked, "failed": failed,
                      "longest_gap_s": round(longest, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
