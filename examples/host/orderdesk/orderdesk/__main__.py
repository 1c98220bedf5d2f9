"""``python -m orderdesk --port 8471 --data DIR``: serve orders until SIGTERM.

SIGTERM is a graceful stop: the server stops accepting, finishes the requests in hand,
checkpoints and closes the database, then exits 0.
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from orderdesk import __version__

SCHEMA = """CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    txn TEXT UNIQUE NOT NULL,
    version TEXT NOT NULL,
    t REAL NOT NULL
)"""


class Orders:
    """The order book: one SQLite file in the data directory, one writer at a time."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                    timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")  # acknowledged = on the disk
        self.conn.execute(SCHEMA)
        self.lock = threading.Lock()

    def add(self, txn: str) -> int:
        with self.lock:
            self.conn.execute("INSERT OR IGNORE INTO orders (txn, version, t) VALUES (?, ?, ?)",
                              (txn, __version__, time.time()))
            row = self.conn.execute("SELECT id FROM orders WHERE txn = ?", (txn,)).fetchone()
            return int(row[0])

    def close(self) -> None:
        with self.lock:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.close()


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.0"

    def _answer(self, code: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200, {"status": "ok", "version": __version__})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path != "/orders":
            self._answer(404, {"error": "not found"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            txn = str(json.loads(self.rfile.read(length))["txn"])
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": 'send {"txn": "..."}'})
            return
        order = self.server.orders.add(txn)
        self._answer(201, {"txn": txn, "id": order, "version": __version__})

    def log_message(self, format: str, *args: object) -> None:  # one line per error only
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = False  # a graceful stop waits for the requests in hand
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], orders: Orders) -> None:
        super().__init__(address, Handler)
        self.orders = orders


def main() -> None:
    parser = argparse.ArgumentParser(prog="orderdesk", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    orders = Orders(args.data / "orders.db")
    server = Server((args.host, args.port), orders)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"orderdesk {__version__} serving on {args.host}:{args.port}", flush=True)
    server.serve_forever(poll_interval=0.02)
    server.server_close()  # joins the request threads
    orders.close()
    print(f"orderdesk {__version__} stopped", flush=True)


if __name__ == "__main__":
    main()
