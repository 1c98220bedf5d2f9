"""The simulator's fault catalogue: what can be injected, where, and on which side.

A fault is armed by name at a *point* (the driver request it fires in, or ``now``)
and on a *side* (``production``, ``upgrade``, or an enclosure ``0``/``1``).  Armed
faults live in the twin, so a fault armed by ``ftkit sim fault`` in one process fires
in the upgrade run of another.  Each fires ``times`` times (default once): after a
repair, Retry succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass

from ftkit.errors import FaultError

__all__ = ["FAULTS", "POINTS", "SIDES", "FaultSpec", "arm"]

POINTS = ("now", "split", "install", "reboot", "merge", "commit", "abort", "finish", "action")
SIDES = ("production", "upgrade", "0", "1")


@dataclass(frozen=True)
class FaultSpec:
    name: str
    description: str
    points: tuple[str, ...]
    default_point: str
    default_side: str
    needs_target: bool = False  # e.g. which service, disk or package


FAULTS: dict[str, FaultSpec] = {
    spec.name: spec
    for spec in (
        FaultSpec("module-fail", "a CPU module fails (its enclosure drops out)",
                  POINTS[:-1], "now", "upgrade"),
        FaultSpec("installer-fail", "an update installer exits non-zero",
                  ("install",), "install", "upgrade"),
        FaultSpec("installer-hang", "an update installer hangs past its timeout",
                  ("install",), "install", "upgrade"),
        FaultSpec("hang-post", "the partner side hangs at BIOS POST",
                  ("reboot", "abort"), "reboot", "upgrade"),
        FaultSpec("hang-boot", "the partner side hangs while the OS boots",
                  ("reboot", "abort"), "reboot", "upgrade"),
        FaultSpec("hang-shutdown", "the partner side hangs while shutting down",
                  ("reboot", "merge", "abort"), "reboot", "upgrade"),
        FaultSpec("service-stop-refused", "a critical service refuses to stop",
                  ("split", "merge", "abort"), "merge", "production"),
        FaultSpec("service-start-refused", "a critical service refuses to start",
                  ("merge", "abort"), "merge", "upgrade"),
        FaultSpec("action-fail", "a custom action exits non-zero",
                  ("action",), "action", "production"),
        FaultSpec("action-timeout", "a custom action runs past its timeout",
                  ("action",), "action", "production"),
        FaultSpec("resync-fail", "an RDR resync fails part way",
                  ("commit", "abort"), "commit", "upgrade"),
        FaultSpec("dhcp-lease-fail", "a DHCP lease cannot be renewed",
                  ("now",), "now", "production"),
        FaultSpec("disk-fail", "an internal data disk member fails",
                  ("now", "split", "install", "merge", "commit", "abort"), "now", "upgrade",
                  needs_target=False),
    )
}


def arm(name: str, *, point: str | None = None, side: str | None = None,
        target: str = "", times: int = 1) -> dict[str, object]:
    """A validated armed-fault record; bad input is a one-line FaultError."""
    spec = FAULTS.get(name)
    if spec is None:
        raise FaultError(f"unknown fault {name!r}", f"choose one of: {', '.join(FAULTS)}")
    point = point or spec.default_point
    if point not in spec.points:
        raise FaultError(
            f"fault {name!r} cannot fire at {point!r}", f"use --at {' | '.join(spec.points)}"
        )
    side = (side or spec.default_side).lower()
    if side not in SIDES:
        raise FaultError(f"unknown side {side!r}", f"use --side {' | '.join(SIDES)}")
    if times < 1:
        raise FaultError(f"--times must be at least 1, not {times}", "write --times 1 or more")
    return {"name": name, "point": point, "side": side, "target": target, "times": times}
