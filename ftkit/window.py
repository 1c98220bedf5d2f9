"""Change controls: the change window, the outage budget and decision timeouts.

A change carries its window (``window_start``, ``window_end``: runbook parameters, or
``[window] start``/``end`` in the configuration); the outage budget (``max_outage_s``)
and the decision timeout (``decision_timeout_min``) are in the configuration::

    [window]
    start = "2026-12-05T22:00:00+01:00"   # ISO 8601 with an offset, or
    end = "2026-12-06T02:00 Europe/Berlin" # a local time and a zone name (zoneinfo)
    window = "required"                  # "optional" (the simulator's default) | "required"
    on_window_end = "abort"              # "abort" | "hold": a soak that reaches the end
    max_outage_s = 60                    # the merge's promised outage budget
    on_outage_breach = "abort"           # "abort" | "record"
    decision_timeout_min = 30            # or { split = 60, merge = 30, commit = 120 }

What each control does is declared in :mod:`ftkit.flow` (the guards ``inside the
window`` and ``merge fits the window``, the rules ``outage budget`` and ``window end``,
the decision timeouts' outcomes); this module holds the model (:class:`Controls`,
:class:`Window`), reads the configuration's table and the parameters, tells the time on
the system's clock (:func:`system_time`: the simulator's simulated time, so tests are fast
and exact) and registers the guards and rules the table names. Everything here is
read-only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ftkit import flow
from ftkit.decisions import Decision, account
from ftkit.errors import FtkitError, ParameterError
from ftkit.model import Request

if TYPE_CHECKING:
    from ftkit.drivers import Driver
    from ftkit.model import SystemState
    from ftkit.process import Session
    from ftkit.tomlreader import Reader

__all__ = [
    "KEYS",
    "Controls",
    "Expired",
    "Window",
    "check_window",
    "merge_outage",
    "minutes_left",
    "parse_time",
    "read_controls",
    "remaining",
    "rule_decision",
    "status_facts",
    "system_time",
    "window_facts",
]

R = Request
#: The keys of the configuration's ``[window]`` table.
KEYS = ("start", "end", "window", "on_window_end", "max_outage_s", "on_outage_breach",
        "decision_timeout_min")
NEEDS = ("optional", "required")
ON_WINDOW_END = tuple(flow.RULES["window end"].outcomes)
ON_OUTAGE_BREACH = tuple(flow.RULES["outage budget"].outcomes)
#: The longest decision timeout (one week), in minutes.
MAX_TIMEOUT_MIN = 7 * 24 * 60.0
_EXAMPLE = '"2026-12-05T22:00:00+01:00" or "2026-12-05T22:00 Europe/Berlin"'
# "2026-12-05T22:00 Europe/Berlin" or RFC 9557's "2026-12-05T22:00[Europe/Berlin]"
_ZONED = re.compile(r"^(?P<time>[^\s\[]+)(?:\s+(?P<zone>\S+)|\[(?P<bzone>[^\]]+)\])$")


def parse_time(value: object, *, what: str) -> datetime:
    """VALUE (ISO 8601 with an offset, or a local time followed by a zone name, or a TOML
    date-time with an offset) as an aware datetime; a one-line ParameterError naming WHAT
    otherwise. Read-only."""
    fix = f"write {what} as {_EXAMPLE}"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ParameterError(f"{what} {value.isoformat()} has no UTC offset or zone", fix)
        return value
    if isinstance(value, date) or not isinstance(value, str) or not value.strip():
        raise ParameterError(f"{what} must be a date and time, not {value!r}"[:200], fix)
    text = value.strip()
    match = _ZONED.match(text)
    zone_name = (match["zone"] or match["bzone"]) if match else None
    if zone_name is not None and match is not None:
        text = match["time"]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ParameterError(f"{what} {value!r} is not an ISO 8601 date and time"[:200],
                             fix) from None
    if zone_name is not None:
        if moment.tzinfo is not None:
            raise ParameterError(f"{what} {value!r} gives both an offset and a zone", fix)
        try:
            moment = moment.replace(tzinfo=ZoneInfo(zone_name))
        except (ZoneInfoNotFoundError, ValueError):
            raise ParameterError(f"{what}: unknown time zone {zone_name!r}"[:200],
                                 "name an IANA zone such as Europe/Berlin or UTC") from None
    if moment.tzinfo is None:
        raise ParameterError(f"{what} {value!r} has no UTC offset or zone", fix)
    return moment


def _shown(moment: datetime) -> str:
    """``2026-12-05 22:00 +01:00`` (as the window was written, to the minute)."""
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def _minutes(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes:.0f} min" if abs(minutes) < 120 else f"{minutes / 60:.1f} h"


@dataclass(frozen=True)
class Window:
    """A change window: the system may be split or merged from START up to END."""

    start: datetime
    end: datetime

    def __str__(self) -> str:
        return f"{_shown(self.start)} to {_shown(self.end)}"

    def refusal(self, now: datetime, what: str) -> tuple[str, str] | None:
        """(why, remedy) when NOW is outside the window, else None (pure)."""
        if now < self.start:
            return (f"{what}: the change window opens at {_shown(self.start)}, in "
                    f"{_minutes(self.start - now)} (now "
                    f"{_shown(now.astimezone(self.start.tzinfo))})",
                    "run again inside the window, or give the change's approved window "
                    "(window_start, window_end)")
        if now >= self.end:
            return (f"{what}: the change window ended at {_shown(self.end)}, "
                    f"{_minutes(now - self.end)} ago",
                    "nothing changed; run again in the change's next window (window_start, "
                    "window_end), or abort (abort.ipynb)")
        return None

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass(frozen=True)
class Controls:
    """The change controls of a configuration (and the run's window parameters):
    what is said, with None for "not said" (the defaults are applied where read)."""

    start: str | None = None
    end: str | None = None
    window: str | None = None  # optional | required; None: optional for sim://, else required
    on_window_end: str | None = None  # abort | hold (default abort)
    max_outage_s: float | None = None
    on_outage_breach: str | None = None  # abort | record (default record)
    # (question, minutes) pairs; question "*": every decision without its own
    decision_timeout_min: tuple[tuple[str, float], ...] = ()

    @property
    def said(self) -> bool:
        """True when anything is said (the configuration's digest includes it then)."""
        return any(v not in (None, {}) for v in self.to_dict().values())

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "window": self.window,
                "on_window_end": self.on_window_end, "max_outage_s": self.max_outage_s,
                "on_outage_breach": self.on_outage_breach,
                "decision_timeout_min": dict(self.decision_timeout_min)}

    def merged(self, over: Controls) -> Controls:
        """These controls with what OVER says in their place (an including file)."""
        said = {k: v for k, v in over.to_dict().items() if v not in (None, {})}
        if "decision_timeout_min" in said:
            said["decision_timeout_min"] = tuple(
                {**dict(self.decision_timeout_min), **said["decision_timeout_min"]}.items())
        return replace(self, **said)

    def with_window(self, start: str | None, end: str | None) -> Controls:
        """These controls with the run's window parameters in place of the configuration's
        (an empty parameter keeps the configuration's)."""
        return replace(self, start=start or self.start, end=end or self.end)

    def the_window(self) -> Window | None:
        """The window, parsed; None when none is given. A one-line ParameterError for a
        bad time, only one of the two, or an end not after the start."""
        if not self.start and not self.end:
            return None
        if not self.start or not self.end:
            missing = "window_start" if not self.start else "window_end"
            raise ParameterError(f"the change window has no {missing.split('_')[1]}",
                                 f"give both window_start and window_end (-p {missing} …)")
        start = parse_time(self.start, what="window_start")
        end = parse_time(self.end, what="window_end")
        if end <= start:
            raise ParameterError(f"the change window ends ({_shown(end)}) before it starts "
                                 f"({_shown(start)})", "give a window_end after window_start")
        return Window(start, end)

    def required(self, target: str) -> bool:
        """Whether a run on TARGET needs a window: ``window`` as said, else required for
        every driver but the simulator."""
        if self.window is not None:
            return self.window == "required"
        return not target.startswith("sim://")

    @property
    def end_policy(self) -> str:
        return self.on_window_end or ON_WINDOW_END[0]

    @property
    def breach_policy(self) -> str:
        return self.on_outage_breach or ON_OUTAGE_BREACH[0]

    def timeout_min(self, question: str) -> float | None:
        """Decision QUESTION's timeout in minutes (its own, else the default), or None."""
        got = dict(self.decision_timeout_min)
        return got.get(question, got.get("*"))


def _timeout_minutes(r: Reader, table: Mapping[str, Any], key: str, where: str,
                     example: str) -> float:
    """A timeout in minutes: 0 (do not wait: expire at once) or a number in (0, the most]."""
    value = table[key]
    if value == 0 and not isinstance(value, bool):
        return 0.0
    got = r.number(table, key, where, example, low=0, high=MAX_TIMEOUT_MIN, unit="minutes")
    assert got is not None
    return got


def read_controls(r: Reader, raw: Mapping[str, Any]) -> Controls:
    """What one configuration file's ``[window]`` table says (its keys, types and bounds
    checked: one ConfigError line naming the key); read-only."""
    table = r.table(raw, "window", "", KEYS, '[window] start = "2026-12-05T22:00:00+01:00"')
    if table is None:
        return Controls()
    times: dict[str, str] = {}
    for key in ("start", "end"):
        if key in table:
            value = table[key]
            try:
                parse_time(value, what=f"window.{key}")
            except ParameterError as err:
                r.fail(f"window.{key}", err.message.split(": ", 1)[-1], err.remedy)
            times[key] = value.isoformat() if isinstance(value, datetime) else str(value)
    timeouts: dict[str, float] = {}
    if "decision_timeout_min" in table:
        value = table["decision_timeout_min"]
        example = "decision_timeout_min = 30 (or { merge = 30, commit = 120 })"
        if isinstance(value, Mapping):
            r.known(value, tuple(q.value for q in flow.DECISIONS), "window.decision_timeout_min")
            for question in value:
                got = _timeout_minutes(r, value, question, "window.decision_timeout_min", example)
                timeouts[str(question)] = got
        else:
            timeouts["*"] = _timeout_minutes(r, table, "decision_timeout_min", "window", example)
    controls = Controls(
        start=times.get("start"), end=times.get("end"),
        window=r.choice(table, "window", "window", NEEDS),
        on_window_end=r.choice(table, "on_window_end", "window", ON_WINDOW_END),
        max_outage_s=r.number(table, "max_outage_s", "window", "max_outage_s = 60", low=0,
                              high=86400, unit="seconds"),
        on_outage_breach=r.choice(table, "on_outage_breach", "window", ON_OUTAGE_BREACH),
        decision_timeout_min=tuple(timeouts.items()))
    try:
        controls.the_window()
    except ParameterError as err:
        r.fail("window", err.message, err.remedy.replace("window_", "").replace(" (-p ", " ("))
    return controls


# --- the system's clock -----------------------------------------------------------------

def system_time(source: Driver | SystemState) -> datetime:
    """The system's clock as a date and time (UTC): its epoch plus its clock's seconds
    (the simulator's simulated time; a real host's own). Read-only."""
    st: Any = source if hasattr(source, "epoch") else source.status()
    epoch = datetime.fromisoformat(str(st.epoch))
    if epoch.tzinfo is None:
        epoch = epoch.replace(tzinfo=UTC)
    return (epoch + timedelta(seconds=float(st.now))).astimezone(UTC)


# --- the estimate of what remains before the window's end --------------------------------

def remaining(facts: Mapping[str, Any], soak_minutes: float) -> list[tuple[str, float]]:
    """What remains once the merge starts, from the declared estimates (pure): the merge
    (PrepareMerge, ExecuteMerge), the soak, the longer of commit and abort after the
    merge, and Finish; each ``(what, minutes)``."""
    spec = flow.REQUESTS

    def cost(request: Request, merged: bool) -> float:
        return sum(e.minutes for e in spec[request].estimates({**facts, "merged": merged}))

    commit, abort = cost(R.COMMIT, True), cost(R.ABORT, True)
    end = ("commit", commit) if commit >= abort else ("abort", abort)
    return [("merge", cost(R.PREPARE_MERGE, False) + cost(R.EXECUTE_MERGE, False)),
            ("soak", float(soak_minutes)), end, ("finish", cost(R.FINISH, True))]


def _needs_text(rows: list[tuple[str, float]]) -> tuple[float, str]:
    total = sum(m for _w, m in rows)
    parts = ", ".join(f"{w} {m:.1f}" for w, m in rows if m > 0)
    return total, parts


def _fit_refusal(window: Window, now: datetime, rows: list[tuple[str, float]]
                 ) -> tuple[str, str] | None:
    total, parts = _needs_text(rows)
    left = (window.end - now).total_seconds() / 60
    if total <= left:
        return None
    return (f"merge refused: merge, soak and {rows[2][0]} need about {total:.0f} min "
            f"({parts} min), the window ends in {max(left, 0):.0f} min "
            f"({_shown(window.end)})",
            "nothing changed: the system stays split, the Production side serving; merge "
            "in the change's next window (merge: later now, window_start/window_end then), "
            "shorten soak_minutes, or abort (no outage)")


# --- guards and rules, as ftkit/flow.py declares them ---------------------------------

def _window_of(session: Session) -> tuple[Window | None, tuple[str, str] | None]:
    controls: Controls = getattr(session, "controls", Controls())
    window = controls.the_window()
    if window is None and controls.required(session.target):
        return None, (f"no change window: a run on {session.target} needs one "
                      "(window = \"required\")",
                      "give -p window_start … -p window_end … (ISO 8601 with an offset or "
                      "zone), or [window] start and end in the configuration")
    return window, None


@flow.guard("inside the window")
def inside_the_window(session: Session) -> tuple[str, str] | None:
    """Split and merge start only inside the change window (a run without one only where
    the configuration allows it); refused with nothing changed."""
    window, missing = _window_of(session)
    if window is None:
        return missing
    return window.refusal(system_time(session.driver),
                          "refused: split and merge start only inside the change window")


@flow.guard("merge fits the window")
def merge_fits_the_window(session: Session) -> tuple[str, str] | None:
    """The merge starts only when the estimate of what remains (merge, soak, commit or
    abort, finish) ends before the window does."""
    window, _missing = _window_of(session)
    if window is None:
        return None
    from ftkit.process import plan_facts

    st = session.driver.status()
    rows = remaining(plan_facts(st, session.config, session.packages), session.soak_minutes)
    return _fit_refusal(window, system_time(st), rows)


@flow.rule("outage budget")
def outage_budget(session: Session) -> str | None:
    """The merge's measured outage exceeded ``max_outage_s``."""
    budget = getattr(session, "controls", Controls()).max_outage_s
    if budget is None:
        return None
    outage = merge_outage(session)
    if outage is None or outage <= budget:
        return None
    return (f"the merge's measured outage {outage:.1f} s exceeded max_outage_s {budget:g} s by "
            f"{outage - budget:.1f} s")


@flow.rule("window end")
def window_end(session: Session) -> str | None:
    """The change window ended before the commit decision."""
    window = getattr(session, "controls", Controls()).the_window()
    if window is None:
        return None
    now = system_time(session.driver)
    if now < window.end:
        return None
    return f"the change window ended at {_shown(window.end)} before the commit decision"


def minutes_left(session: Session) -> float | None:
    """Minutes from the system's clock to the window's end (None without a window);
    read-only. What a soak is cut to."""
    window = getattr(session, "controls", Controls()).the_window()
    if window is None:
        return None
    return (window.end - system_time(session.driver)).total_seconds() / 60


def merge_outage(session: Session) -> float | None:
    """The merge's measured outage in seconds: the session's first outage (an abort's
    restart comes after it); None before the merge. Read-only."""
    first = next(iter(session.outages()), None)
    return None if first is None or first.seconds is None else first.seconds


def rule_decision(question: str, answer: str, why: str, *, source: str = "rule") -> Decision:
    """The decision a declared rule (or a timeout) journals in place of a person's."""
    return Decision(name=question, answer=answer, who="ftkit", why=why, source=source,
                    where=f"{source} (declared in ftkit/flow.py)",
                    when=datetime.now(UTC).isoformat(timespec="seconds"), account=account())


@dataclass(frozen=True)
class Expired:
    """The decision provider of a decision whose timeout expired: its answer is
    :data:`ftkit.flow.EXPIRED`, and the engine applies the declared outcome
    (:data:`ftkit.flow.ON_TIMEOUT`)."""

    minutes: float

    def decide(self, name: str) -> Decision:
        return rule_decision(name, flow.EXPIRED,
                             f"no {name} decision within {self.minutes:g} min "
                             "(decision_timeout_min)", source="timeout")


# --- what a check, the plan and the record show --------------------------------------

def check_window(state: SystemState, controls: Controls, target: str,
                 plan_minutes: float, merge_outage_s: float = 0.0) -> tuple[str, str, str]:
    """(status, detail, remedy) of the change controls for the readiness check, ``ftkit
    check`` and the plan: the window, where the system's clock stands in it, and whether
    PLAN_MINUTES (the plan's estimate, without the soak) fit; the outage budget against
    the merge's estimated outage (MERGE_OUTAGE_S); the decision timeouts. Read-only."""
    status, detail, remedy = _check_the_window(state, controls, target, plan_minutes)
    more: list[str] = []
    if controls.max_outage_s is not None:
        more.append(f"outage budget {controls.max_outage_s:g} s (on breach: "
                    f"{controls.breach_policy}), the merge's estimate about "
                    f"{merge_outage_s:.0f} s")
        if merge_outage_s > controls.max_outage_s and status == "pass":
            status, remedy = "warn", ("the merge's estimated outage exceeds max_outage_s: "
                                      "raise the budget, or expect the breach")
    if controls.decision_timeout_min:
        more.append("decision timeouts " + ", ".join(
            f"{'every decision' if q == '*' else q} {m:g} min"
            for q, m in controls.decision_timeout_min))
    return status, "; ".join([detail, *more]), remedy


def _check_the_window(state: SystemState, controls: Controls, target: str,
                      plan_minutes: float) -> tuple[str, str, str]:
    try:
        window = controls.the_window()
    except FtkitError as err:
        return "fail", err.message, err.remedy
    if window is None:
        if controls.required(target):
            return ("fail", f"no change window, and a run on {target} needs one",
                    "give window_start and window_end, or [window] start and end")
        return "pass", "no change window given (optional for this system)", ""
    now = system_time(state)
    said = f"window {window}; the plan needs about {plan_minutes:.0f} min plus the soak"
    if now >= window.end:
        return ("fail", f"{said}; the window ended {_minutes(now - window.end)} ago",
                "give the change's next window")
    begin = max(now, window.start)
    left = (window.end - begin).total_seconds() / 60
    if plan_minutes > left:
        return ("warn", f"{said}: it does not fit ({left:.0f} min left)",
                "a merge that could not finish in time is refused; plan a longer window")
    if now < window.start:
        return ("warn", f"{said}; it opens in {_minutes(window.start - now)}",
                "split and merge are refused until the window opens")
    return "pass", f"{said}, {left:.0f} min left: it fits", ""


def window_facts(session: Session) -> dict[str, Any]:
    """What the change record states of the controls (read-only): the window and whether
    it was met (no step started outside it), the outage budget against the merge's
    measured outage (met, or exceeded by how much)."""
    controls: Controls = getattr(session, "controls", Controls())
    out: dict[str, Any] = {}
    window = _window_or_none(controls)
    if window is not None:
        epoch = _epoch(str(session.driver.status().epoch))  # once, not per step
        outside = [e.step for e in session.entries(kinds=["intent"]) if e.sim_time is not None
                   and not window.start <= epoch + timedelta(seconds=float(e.sim_time))
                   <= window.end]
        out["window"] = {**window.to_dict(), "met": not outside,
                         **({"outside": sorted(set(outside))} if outside else {})}
    if controls.max_outage_s is not None:
        outage = round(merge_outage(session) or 0.0, 1)
        over = round(outage - controls.max_outage_s, 1)
        out["outage_budget"] = {"max_outage_s": controls.max_outage_s,
                                "merge_outage_s": outage,
                                "met": over <= 0, **({"exceeded_by_s": over} if over > 0
                                                     else {}),
                                "on_outage_breach": controls.breach_policy}
    return out


def _window_or_none(controls: Controls) -> Window | None:
    """CONTROLS' window, None when it has none or one that cannot be read (a record or a
    status says nothing of a window it cannot read; the run refused it already)."""
    try:
        return controls.the_window()
    except FtkitError:
        return None


def _epoch(text: str) -> datetime:
    """A system's epoch (its clock's zero) as an aware datetime (UTC when it names none)."""
    epoch = datetime.fromisoformat(text)
    return epoch if epoch.tzinfo is not None else epoch.replace(tzinfo=UTC)


def status_facts(said: Mapping[str, Any] | None, *, epoch: str, started: Sequence[float],
                 merge_outage_s: float | None) -> dict[str, Any] | None:
    """What ``ftkit status`` shows of a session's controls (pure): SAID is the ``window``
    its journaled configuration holds (window parameters included), STARTED the system
    clock's seconds at which its steps started, MERGE_OUTAGE_S the merge's measured outage.
    None when the session had no controls."""
    if not said:
        return None
    controls = Controls(start=said.get("start"), end=said.get("end"),
                        max_outage_s=said.get("max_outage_s"))
    out: dict[str, Any] = {}
    window = _window_or_none(controls)
    if window is not None:
        base = _epoch(epoch)
        out["window"] = {**window.to_dict(), "met": all(
            window.start <= base + timedelta(seconds=t) <= window.end for t in started)}
    if controls.max_outage_s is not None:
        outage = round(merge_outage_s or 0.0, 1)
        out["outage_budget"] = {"max_outage_s": controls.max_outage_s,
                                "merge_outage_s": outage,
                                "met": outage <= controls.max_outage_s}
    return out or None
