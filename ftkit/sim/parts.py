"""The parts of the simulator's multi-part requests, declared once and in order.

ExecuteMerge, Commit and Abort each change the twin in several transactions, with time
passing between them.  Each request's parts are an ordered enum below; the twin keeps a
:class:`Marker` naming the request and the part to do next (``SimSettings.marker``, never
in :class:`~ftkit.model.SystemState`).  Called again after a fault or a killed process,
the request carries on from its marker: the parts before it are done and are not done
again.  Each part's last transaction moves the marker on, together with its change.

Commit and Abort keep the marker at their last part (the RDR resync) until Finish
clears it, so "the resync finished but nobody ran Finish" stays visible.  The
driver-neutral model sees only which request is unfinished (``SystemState.unfinished``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ftkit.model import Request

__all__ = ["PARTS", "AbortPart", "CommitPart", "Marker", "MergePart", "Part"]


class MergePart(StrEnum):
    """ExecuteMerge, in order."""

    STOP_APPLICATIONS = "stop the applications on the Production side"
    HAND_OVER = "hand the data disks and startup types over to the Upgrade side"
    START_APPLICATIONS = "start the applications on the Upgrade side"
    SHUT_DOWN_ORIGINAL_SIDE = "shut the original side down"


class CommitPart(StrEnum):
    """Commit, in order."""

    REJOIN = "rejoin the sides, Upgrade side as the source"
    RESYNC = "RDR resync of the original side"


class AbortPart(StrEnum):
    """Abort, in order.  RESTART_PRODUCTION has nothing to do when the applications
    never left the Production side (an abort before merge)."""

    STOP_APPLICATIONS = "stop the applications on the Upgrade side"
    SHUT_DOWN_UPGRADE_SIDE = "shut the Upgrade side down"
    RESTART_PRODUCTION = "restart the applications on the Production side"
    REJOIN = "rejoin the sides, Production side as the source"
    RESYNC = "RDR resync of the Upgrade side"


Part = MergePart | CommitPart | AbortPart

PARTS: dict[Request, type[MergePart] | type[CommitPart] | type[AbortPart]] = {
    Request.EXECUTE_MERGE: MergePart,
    Request.COMMIT: CommitPart,
    Request.ABORT: AbortPart,
}


@dataclass
class Marker:
    """Where an unfinished multi-part request stands: ``part`` is the next one to do."""

    request: Request
    part: str

    def __post_init__(self) -> None:
        self.part = PARTS[self.request](self.part)  # refuses a part of another request

    @classmethod
    def after(cls, part: Part) -> Marker | None:
        """The marker once PART is done: the next part of its request, or None after
        the last part of ExecuteMerge (Commit and Abort stay at theirs until Finish)."""
        request = next(r for r, parts in PARTS.items() if isinstance(part, parts))
        order = list(PARTS[request])
        at = order.index(part)
        if at + 1 < len(order):
            return cls(request, order[at + 1])
        return None if request is Request.EXECUTE_MERGE else cls(request, part)


def todo(marker: Marker | None, request: Request) -> list[Part]:
    """The parts of REQUEST still to do, in order: from MARKER on when it is REQUEST's;
    all of them otherwise (none under way, or another request's that REQUEST supersedes,
    as an Abort supersedes an unfinished ExecuteMerge)."""
    order: list[Part] = list(PARTS[request])
    if marker is None or marker.request is not request:
        return order
    return order[order.index(PARTS[request](marker.part)):]
