"""Property: random sequences of requests, faults and process kills keep the invariants
(docs/DOMAIN.md#invariants).

A "kill" stops the process at a random instant inside a driver request (the twin keeps
what it committed, the journal keeps an intent with no outcome); the next "process"
opens the session afresh and resumes it.  After every operation: no acknowledged
transaction lost, only declared transitions in the journal, at most one session open;
at the end, the operator drives the session home (repair, retry or abort, finish) and
the system is duplex with one consistent software set.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from pathlib import Path

import pytest
from conftest import CONFIG, PACKAGES
from drive import finish, request, resume, retry
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ftkit.decisions import ParameterDecisions
from ftkit.errors import FtkitError
from ftkit.model import ModuleState, UpgradeState
from ftkit.narrate import summary
from ftkit.process import REQUESTS, open_session
from ftkit.sim.driver import SimDriver, create_system
from ftkit.sim.faults import FAULTS as FAULT_CATALOGUE

SOFTWARE = ("OrderDB", "Windows Server 2022")

EDGES = {(r.target.value, r.target.value) for r in REQUESTS.values()}
for r in REQUESTS.values():
    for source in r.sources:
        EDGES.add((source.value, r.target.value))
        EDGES.add((source.value, source.value))

FAULTS = [
    ("module-fail", "split", "upgrade"), ("module-fail", "install", "upgrade"),
    ("module-fail", "merge", "production"), ("module-fail", "commit", "production"),
    ("installer-fail", "install", "upgrade"), ("installer-hang", "install", "upgrade"),
    ("hang-post", "reboot", "upgrade"), ("hang-shutdown", "abort", "upgrade"),
    ("service-stop-refused", "merge", "production"),
    ("service-start-refused", "merge", "upgrade"),
    ("action-fail", "action", "production"), ("resync-fail", "commit", "upgrade"),
    ("resync-fail", "abort", "upgrade"),
]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("step"), st.sampled_from(["proceed", "abort"])),
        st.tuples(st.just("fault"), st.sampled_from(FAULTS)),
        st.tuples(st.just("kill"), st.integers(min_value=0, max_value=30)),
        st.tuples(st.just("repair"), st.none()),
        st.tuples(st.just("abort"), st.none()),
    ),
    min_size=1,
    max_size=14,
)


class Killed(BaseException):
    """The process died here (not an FtkitError: nothing catches it)."""


def kill_after(driver: SimDriver, chunks: int) -> None:
    real = driver._elapse
    left = [chunks]

    def elapse(*args, **kwargs):  # type: ignore[no-untyped-def]
        if left[0] <= 0:
            driver._elapse = real  # type: ignore[method-assign]
            raise Killed
        left[0] -= 1
        return real(*args, **kwargs)

    driver._elapse = elapse  # type: ignore[method-assign]


def check_invariants(driver: SimDriver, session) -> None:  # type: ignore[no-untyped-def]
    assert driver.lost_transactions() == 0
    journal = session.journal
    assert sum(1 for s in journal.sessions() if s.active) <= 1
    for record in journal.sessions():
        states = [e.detail.get("upgrade_state") for e in journal.entries(record.id, kinds=["state"])
                  if isinstance(e.detail, dict)]
        states = ["Idle", *[s for s in states if s]]
        for a, b in itertools.pairwise(states):
            assert (a, b) in EDGES, f"illegal transition {a} -> {b}"


def drive_home(driver: SimDriver, session) -> str:  # type: ignore[no-untyped-def]
    """What an operator does to end any session: repair, retry or abort, finish."""
    # a killed process left a step half done: finish it first; if it goes Broken again,
    # the loop below repairs, retries or aborts
    with contextlib.suppress(FtkitError):
        resume(session)
    for _ in range(12):
        if session.record is None or not session.record.active:
            return session.record.outcome if session.record else "none"
        if any(m.state is not ModuleState.ONLINE for m in driver.status().modules.values()):
            driver.repair()
        try:
            if session.broken:
                retry(session)
            state = session.upgrade_state
            if state in (UpgradeState.COMMIT, UpgradeState.ABORT):
                return finish(session)
            request(session, "Abort")
        except FtkitError:
            continue
    raise AssertionError(f"session did not end: {summary(session)}")


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path_factory.mktemp("prop")
    monkeypatch.setenv("FTKIT_HOME", str(path))
    return path


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=ops)
def test_random_requests_faults_and_kills_keep_the_invariants(home: Path, sequence) -> None:  # type: ignore[no-untyped-def]
    target = f"sim://h-{uuid.uuid4().hex[:10]}"
    driver = create_system(target)
    session = open_session(driver, CONFIG, PACKAGES, operator="prop")
    for op, arg in sequence:
        try:
            if op == "step":
                answers = {"split": "proceed", "merge": arg, "commit":
                           "commit" if arg == "proceed" else "abort"}
                session.run(ParameterDecisions(answers), soak_minutes=1)
            elif op == "fault":
                name, point, side = arg
                driver.inject(name, point=point, side=side)
            elif op == "kill":
                kill_after(driver, arg)
                try:
                    session.run(ParameterDecisions({"split": "proceed", "merge": "proceed",
                                                    "commit": "commit"}), soak_minutes=1)
                except Killed:
                    event("killed mid-request")
                    driver = SimDriver(target, driver.store)  # the next process
                    session = open_session(driver, CONFIG, PACKAGES, operator="next")
                finally:
                    driver.__dict__.pop("_elapse", None)
            elif op == "repair":
                driver.repair()
            elif op == "abort":
                request(session, "Abort")
        except FtkitError:
            pass  # refused or Broken: the invariants must hold all the same
        check_invariants(driver, session)
        if session.record is not None and not session.record.active:
            break
    event(f"state before drive home: {session.upgrade_state.value}")
    outcome = drive_home(driver, session)
    event(f"outcome: {outcome}")
    check_invariants(driver, session)
    status = driver.status()
    assert not status.split
    if any(m.state is not ModuleState.ONLINE for m in status.modules.values()):
        driver.repair()  # "duplex again unless a module is broken": repaired, it is
        status = driver.status()
    assert status.duplex and driver.lost_transactions() == 0
    boot = status.boot_disk()
    assert {k: boot.members[0].software[k] for k in SOFTWARE} == {
        k: boot.members[1].software[k] for k in SOFTWARE}
    upgraded = boot.members[0].software["OrderDB"] == "12.5.0"
    assert upgraded == (outcome == "committed"), outcome


SWEEP = [(spec.name, point, side)
         for spec in sorted(FAULT_CATALOGUE.values(), key=lambda s: s.name)
         for point in spec.points if point != "now"
         for side in ("production", "upgrade")]


# how each run ends: its decisions, its outcome, and the software both disks end with
ENDS = {
    "commit": ({"merge": "proceed", "commit": "commit"}, "committed", "12.5.0"),
    "abort-after-merge": ({"merge": "proceed", "commit": "abort"}, "aborted", "12.4.1"),
    "abort-before-merge": ({"merge": "abort"}, "aborted", "12.4.1"),
}


@pytest.mark.parametrize("end", list(ENDS))
@pytest.mark.parametrize(("fault", "point", "side"), SWEEP,
                         ids=[f"{f}@{p}-{s}" for f, p, s in SWEEP])
def test_every_fault_at_every_point_on_either_side_reaches_a_correct_end(
        home: Path, fault: str, point: str, side: str, end: str) -> None:
    """The whole catalogue, not a sample: whatever single fault fires wherever it can, an
    operator who repairs what broke and answers ``broken: retry`` ends as decided —
    committed, aborted after merge or aborted before it — with nothing lost and both
    system disks on the same software (docs/DOMAIN.md#invariants, 1 to 3)."""
    answers, expected, version = ENDS[end]
    driver = create_system(f"sim://w-{uuid.uuid4().hex[:10]}")
    session = open_session(driver, CONFIG, PACKAGES, operator="sweep")
    driver.inject(fault, point=point, side=side)
    decisions = ParameterDecisions({"split": "proceed", **answers, "broken": "retry"},
                                   operator="sweep")
    outcome = None
    for _ in range(4):
        try:
            outcome = session.run(decisions, soak_minutes=1)
            break
        except FtkitError:
            check_invariants(driver, session)
            status = driver.status()
            if any(m.state is not ModuleState.ONLINE for m in status.modules.values()) or any(
                    not member.healthy for mirror in status.mirrors.values()
                    for member in mirror.members.values()):
                driver.repair()  # the operator replaces what failed
    assert outcome == expected, summary(session)
    check_invariants(driver, session)
    outages = session.outages()
    assert all(o.end is not None for o in outages), outages  # every outage is over
    recorded = {round(float(e.detail["start"]), 3) for e in session.journal.entries(
        session.record.id, kinds=["warning"])
        if isinstance(e.detail, dict) and e.detail.get("outage_s") is not None}
    assert {round(o.start, 3) for o in outages} <= recorded, (outages, recorded)
    status = driver.status()
    assert status.duplex and not status.split and driver.lost_transactions() == 0
    boot = status.boot_disk()
    assert [boot.members[e].software["OrderDB"] for e in (0, 1)] == [version, version]
