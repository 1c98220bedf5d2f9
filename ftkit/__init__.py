"""ftkit: Active Upgrade runbooks for duplexed fault-tolerant servers."""

from __future__ import annotations

from ftkit.errors import FtkitError

__all__ = ["FtkitError", "__version__"]
__version__ = "0.1.0"
