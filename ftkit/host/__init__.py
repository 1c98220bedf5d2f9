"""The host driver (``host:///abs/site.toml``): Active Upgrade of a real service on one
Linux host, with a network namespace for the Upgrade side and a front that holds
connections during the merge. See :mod:`ftkit.host.driver` and docs/HOST.md."""

from __future__ import annotations

__all__ = ["FAULTS", "HostDriver", "open_host", "prerequisites"]

from ftkit.host.driver import FAULTS, HostDriver, open_host, prerequisites
