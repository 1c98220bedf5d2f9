"""orderdesk: the example critical application of the host driver (``host://``).

A tiny HTTP order service: ``POST /orders`` with a JSON body ``{"txn": "..."}`` writes the
order as one SQLite transaction in the data directory and acknowledges it only once it is
committed (``synchronous=FULL``); ``GET /health`` answers ``{"status": "ok", "version"}``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("orderdesk")
except PackageNotFoundError:  # run from the source folder
    __version__ = "0+source"
