"""The Upgrade side's agent: what answers at the upgrade-side address while split.

Run by the host driver with the *Upgrade side's own interpreter* (``TREE/bin/python -I
agent.py``) inside the Upgrade side's network namespace, so that what it reports is what
that tree really runs: ``GET /`` answers the installed distributions and their versions,
whether the data directory is visible (it must not be), and its pid.  Standard library
only: it runs in whatever environment the tree is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.metadata import distributions


class Handler(BaseHTTPRequestHandler):
    data_dir = ""

    def do_GET(self) -> None:
        versions = {d.metadata["Name"]: d.version for d in distributions()}
        body = json.dumps({"versions": versions, "prefix": sys.prefix, "pid": os.getpid(),
                           "data_visible": bool(os.listdir(self.data_dir))
                           if os.path.isdir(self.data_dir) else False}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(prog="agent.py")
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--data", required=True, help="the data directory (must be hidden)")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    Handler.data_dir = args.data
    server = HTTPServer((host, int(port)), Handler)
    print(f"Upgrade side agent on {args.listen} ({sys.prefix})", flush=True)
    server.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
