"""The driver contract: what every driver must do, whatever system it reaches.

Written once, run against every entry of :data:`DRIVER_FACTORIES`: the simulator and the
host driver (a real service on this Linux host, skipped with its reason where the host
driver cannot run); a driver for real hardware (or a lab rig) adds a factory that returns a
:class:`Subject` for a system it may upgrade and abort freely, and must pass unchanged::

    DRIVER_FACTORIES["acme"] = acme_subject      # def acme_subject() -> Subject

Only the :class:`~ftkit.drivers.Driver` protocol is used here, never a driver's own
extras (no fault injection, no twin store).  A request is interrupted the only way the
protocol offers: a progress callback that raises, as a killed process would stop it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ftkit.drivers import Driver, Outage, connect
from ftkit.errors import FtkitError, TransitionError
from ftkit.model import (
    DiskRole,
    MirrorState,
    Module,
    PartnerState,
    SideRole,
    SystemState,
    from_dict,
    to_dict,
)
from ftkit.status import system_status, validate


@dataclass
class Subject:
    """A system under test and what upgrading it takes."""

    driver: Driver
    critical: list[str]
    upgrade_ip: str
    package: Mapping[str, Any]  # name, version, duration_min, needs_reboot
    close: Callable[[], None] = field(default=lambda: None)
    # a real system: its clock runs and its clients keep transacting on their own, so a
    # snapshot leaves out the clock and the count of transactions (nothing else)
    live: bool = False
    time_scale: float = 1.0  # a soak of N seconds in the tests waits N * time_scale
    clock_slack_s: float | None = None  # how far a real clock may overshoot a wait


def _host_subject() -> Subject:
    from host_rig import Load, host_site, host_skip_reason, package

    reason = host_skip_reason()
    if reason:
        pytest.skip(reason)
    rig = host_site()
    site, driver = rig.__enter__()
    load = Load(site, rate=20)

    def close() -> None:
        try:
            load.stop()
        finally:
            rig.__exit__(None, None, None)

    try:
        load.wait_for_acks(driver)
    except BaseException:
        close()
        raise
    from ftkit.host.site import load_site

    return Subject(driver=driver, critical=["orderdesk"],  # type: ignore[arg-type]
                   upgrade_ip=str(load_site(site).upgrade_ip), package=package("2.0.0"),
                   close=close, live=True, time_scale=0.02, clock_slack_s=1.0)


def _sim_subject() -> Subject:
    from ftkit.sim.driver import create_system

    driver = create_system(f"sim://contract-{uuid.uuid4().hex[:12]}", scenario="demo")
    return Subject(
        driver=driver,
        critical=["OrderDB", "WebFront"],
        upgrade_ip="192.0.2.50",
        package={"name": "OrderDB", "version": "12.5.0", "duration_min": 12.0,
                 "needs_reboot": True},
        close=driver.close,
    )


#: scheme → factory of a fresh subject; a new driver adds itself here.
DRIVER_FACTORIES: dict[str, Callable[[], Subject]] = {"sim": _sim_subject,
                                                      "host": _host_subject}


@pytest.fixture(params=sorted(DRIVER_FACTORIES))
def driver_factory(request: pytest.FixtureRequest) -> Callable[[], Subject]:
    return DRIVER_FACTORIES[request.param]


@pytest.fixture
def subject(driver_factory: Callable[[], Subject]) -> Iterator[Subject]:
    made = driver_factory()
    yield made
    made.close()


class Interrupted(Exception):
    """Raised from a progress callback: the request stops part way, as if killed."""


def interrupt_after(calls: int) -> Callable[[str, float, float], None]:
    seen = 0

    def progress(label: str, done: float, total: float) -> None:
        nonlocal seen
        seen += 1
        if seen >= calls:
            raise Interrupted(label)

    return progress


def interrupt_when_resyncing(driver: Driver) -> Callable[[str, float, float], None]:
    """Stop a request at its first progress report made while a mirror resyncs."""

    def progress(label: str, done: float, total: float) -> None:
        if any(m.state is MirrorState.RESYNCING for m in driver.status().mirrors.values()):
            raise Interrupted(label)

    return progress


# --- helpers on the protocol only ------------------------------------------------------


def stable(s: Subject, status: SystemState) -> dict[str, Any]:
    """The status as data; for a live system without its running clock."""
    data = to_dict(status)
    if s.live:
        data.pop("now")
    return data


def snapshot(s: Subject) -> dict[str, Any]:
    """Everything the protocol reports, as JSON-able data (for a live system, all but
    what moves by itself: the clock and the count of acknowledged transactions)."""
    driver = s.driver
    return {
        "status": stable(s, driver.status()),
        "acknowledged": None if s.live else driver.acknowledged(),
        "lost": driver.lost_transactions(),
        "outages": [(o.start, o.end, o.before, o.after) for o in driver.outages()],
    }


def system_software(driver: Driver, name: str) -> set[str | None]:
    st = driver.status()
    return {m.members[e].software.get(name) for m in st.mirrors.values()
            if m.role is DiskRole.SYSTEM for e in m.members}


def split(s: Subject) -> None:
    s.driver.split(critical=s.critical, upgrade_ip=s.upgrade_ip)


def upgrade_side(s: Subject) -> None:
    split(s)
    s.driver.install(s.package)
    s.driver.reboot_upgrade_side()


def merged(s: Subject) -> None:
    upgrade_side(s)
    s.driver.merge(critical=s.critical)


def assert_nothing_lost(driver: Driver) -> None:
    assert driver.lost_transactions() == 0


def assert_duplex(driver: Driver) -> None:
    st = driver.status()
    assert st.duplex and not st.split and not st.merged
    assert all(m.state is MirrorState.MIRRORED for m in st.mirrors.values())


# --- the protocol and the status shape ----------------------------------------------------


def test_is_a_driver(subject: Subject) -> None:
    assert isinstance(subject.driver, Driver)
    assert isinstance(subject.driver.target, str) and "://" in subject.driver.target


def test_target_reconnects(subject: Subject) -> None:
    again = connect(subject.driver.target)
    try:
        assert isinstance(again, Driver)
        assert stable(subject, again.status()) == stable(subject, subject.driver.status())
    finally:
        again.close()


def test_state_dir_is_one_folder_whoever_connects_and_naming_it_changes_nothing(
        subject: Subject) -> None:
    """Where ftkit keeps the system's journal and controller lock: every process that
    connects to the target, from any $FTKIT_HOME, must name the same folder (None: the
    driver has none, and ftkit keeps them under $FTKIT_HOME as before)."""
    folder = subject.driver.state_dir()
    assert folder is None or (isinstance(folder, Path) and folder.is_absolute())
    existed = folder is not None and folder.exists()
    before = snapshot(subject)
    again = connect(subject.driver.target)
    try:
        assert again.state_dir() == folder
    finally:
        again.close()
    assert snapshot(subject) == before  # read-only
    assert folder is None or folder.exists() == existed  # and it creates nothing


def test_status_shape(subject: Subject) -> None:
    st = subject.driver.status()
    assert isinstance(st, SystemState)
    assert isinstance(st.now, float) and st.now >= 0 and st.epoch
    assert all(isinstance(m, Module) for m in st.modules.values())
    assert {m.enclosure for m in st.modules.values()} == {0, 1}
    assert {m.kind for m in st.modules.values()} == {"cpu", "io"}
    assert sum(m.primary for m in st.modules.values()) == 1
    assert set(st.sides) == {0, 1}
    assert all(s.role is SideRole.DUPLEX and s.os is PartnerState.OS_UP
               for s in st.sides.values())
    boot = st.boot_disk()
    assert boot.role is DiskRole.SYSTEM and set(boot.members) == {0, 1}
    assert any(m.role is DiskRole.DATA for m in st.mirrors.values()) or st.external
    for team in st.teams.values():
        assert {a.enclosure for a in team.adapters} <= {0, 1}
    assert st.duplex and not st.split and st.apps_on is not None
    data = to_dict(st)
    assert json.loads(json.dumps(data)) == data  # JSON-safe
    assert to_dict(from_dict(SystemState, data)) == data  # round trip


def test_reading_changes_nothing(subject: Subject) -> None:
    before = snapshot(subject)
    for _ in range(3):
        assert snapshot(subject) == before


def test_time_passes_and_transactions_are_acknowledged(subject: Subject) -> None:
    d = subject.driver
    t0, n0 = d.status().now, d.acknowledged()
    soak = 60 * subject.time_scale
    d.wait(soak)
    assert d.status().now == pytest.approx(t0 + soak, abs=subject.clock_slack_s)
    assert d.acknowledged() > n0
    assert d.outages() == [] and d.lost_transactions() == 0


def test_backup_event_logs_returns_lists(subject: Subject) -> None:
    logs = subject.driver.backup_event_logs([])
    assert logs == {}


# --- requests: idempotent, resumable, refused where the process says ------------------------


def test_split_is_idempotent(subject: Subject) -> None:
    d = subject.driver
    split(subject)
    st = d.status()
    assert st.split and st.production is not None and not st.merged
    assert st.sides[st.production].role is SideRole.PRODUCTION
    assert st.sides[1 - st.production].role is SideRole.UPGRADE
    assert st.sides[1 - st.production].isolated
    assert all(m.state is MirrorState.DISABLED for m in st.mirrors.values())
    before = snapshot(subject)
    split(subject)
    assert snapshot(subject) == before


@pytest.mark.parametrize("request_name", ["split", "install", "merge", "commit", "abort",
                                          "finish"])
def test_each_request_done_twice_is_done_once(subject: Subject, request_name: str) -> None:
    d = subject.driver
    steps: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {
        "split": (lambda: None, lambda: split(subject)),
        "install": (lambda: split(subject), lambda: d.install(subject.package)),
        "merge": (lambda: upgrade_side(subject), lambda: d.merge(critical=subject.critical)),
        "commit": (lambda: merged(subject), d.commit),
        "abort": (lambda: merged(subject), d.abort),
        "finish": (lambda: (merged(subject), d.commit()), d.finish),
    }
    prepare, act = steps[request_name]
    prepare()
    act()
    once = snapshot(subject)
    act()
    assert snapshot(subject) == once


@pytest.mark.parametrize(
    ("request_name", "calls"),
    [("split", 1), ("install", 3), ("merge", 1), ("merge", 3), ("commit", 2), ("abort", 2)],
)
def test_an_interrupted_request_resumes_and_finishes(subject: Subject, request_name: str,
                                                     calls: int) -> None:
    d = subject.driver
    setup: dict[str, Callable[[], None]] = {
        "split": lambda: None,
        "install": lambda: split(subject),
        "merge": lambda: upgrade_side(subject),
        "commit": lambda: merged(subject),
        "abort": lambda: merged(subject),
    }
    act: dict[str, Callable[..., None]] = {
        "split": lambda **kw: d.split(critical=subject.critical, upgrade_ip=subject.upgrade_ip,
                                      **kw),
        "install": lambda **kw: d.install(subject.package, **kw),
        "merge": lambda **kw: d.merge(critical=subject.critical, **kw),
        "commit": d.commit,
        "abort": d.abort,
    }
    setup[request_name]()
    outages_before = len(d.outages())
    with pytest.raises(Interrupted):
        act[request_name](progress=interrupt_after(calls))
    assert_nothing_lost(d)
    act[request_name]()  # resume
    after = snapshot(subject)
    act[request_name]()  # and it is done: a third call does nothing
    assert snapshot(subject) == after
    if request_name == "merge":
        assert d.status().merged and len(d.outages()) == outages_before + 1
    if request_name in ("commit", "abort"):
        d.finish()
        assert_duplex(d)
        expected = subject.package["version"] if request_name == "commit" else None
        versions = system_software(d, subject.package["name"])
        assert len(versions) == 1
        if expected is not None:
            assert versions == {expected}
    assert_nothing_lost(d)


def test_commit_is_refused_before_merge(subject: Subject) -> None:
    d = subject.driver
    upgrade_side(subject)
    before = snapshot(subject)
    with pytest.raises(TransitionError):
        d.commit()
    assert snapshot(subject) == before


def test_abort_is_refused_once_commit_started(subject: Subject) -> None:
    d = subject.driver
    merged(subject)
    with pytest.raises(Interrupted):
        d.commit(progress=interrupt_when_resyncing(d))
    before = snapshot(subject)
    with pytest.raises(TransitionError):
        d.abort()
    assert snapshot(subject) == before
    d.commit()
    d.finish()
    assert system_software(d, subject.package["name"]) == {subject.package["version"]}


@pytest.mark.parametrize("resync_of", ["commit", "abort"])
def test_finish_is_refused_while_resyncing(subject: Subject, resync_of: str) -> None:
    d = subject.driver
    merged(subject)
    request = d.commit if resync_of == "commit" else d.abort
    with pytest.raises(Interrupted):
        request(progress=interrupt_when_resyncing(d))
    assert any(m.state is MirrorState.RESYNCING for m in d.status().mirrors.values())
    before = snapshot(subject)
    with pytest.raises(TransitionError):
        d.finish()
    assert snapshot(subject) == before
    request()
    d.finish()
    assert_duplex(d)


def test_finish_is_refused_while_split(subject: Subject) -> None:
    d = subject.driver
    split(subject)
    with pytest.raises(TransitionError):
        d.finish()
    assert d.status().split


def test_failures_are_ftkit_errors(subject: Subject) -> None:
    d = subject.driver
    for request in (lambda: d.install(subject.package), lambda: d.merge(critical=subject.critical),
                    d.reboot_upgrade_side):
        with pytest.raises(FtkitError):
            request()  # not split: refused with a reason, not a crash
    assert d.status().duplex


# --- the invariants through a whole upgrade and an abort ------------------------------------------


def _outage_ok(o: Outage, limit_s: float) -> bool:
    return o.end is not None and o.seconds is not None and 0 < o.seconds < limit_s


def test_whole_upgrade_loses_nothing(subject: Subject) -> None:
    d = subject.driver
    original = system_software(d, subject.package["name"])
    d.wait(120 * subject.time_scale)
    for step in (
        lambda: split(subject),
        lambda: d.install(subject.package),
        d.reboot_upgrade_side,
        lambda: d.merge(critical=subject.critical),
        lambda: d.wait(300 * subject.time_scale),
        d.commit,
        d.finish,
    ):
        acked = d.acknowledged()
        step()
        assert d.acknowledged() >= acked
        assert_nothing_lost(d)
        validate(system_status(d, session=None))  # the driver-neutral status, every step
    assert_duplex(d)
    assert system_software(d, subject.package["name"]) == {subject.package["version"]}
    assert original != {subject.package["version"]}
    [outage] = d.outages()  # the merge's, and commit added none
    assert _outage_ok(outage, 60.0)


@pytest.mark.parametrize("when", ["after split", "after install", "after merge"])
def test_abort_loses_nothing_and_restores_the_original(subject: Subject, when: str) -> None:
    d = subject.driver
    original = system_software(d, subject.package["name"])
    d.wait(60 * subject.time_scale)
    split(subject)
    if when != "after split":
        d.install(subject.package)
        d.reboot_upgrade_side()
    if when == "after merge":
        d.merge(critical=subject.critical)
    outages = len(d.outages())
    d.wait(60 * subject.time_scale)
    d.abort()
    assert_nothing_lost(d)
    d.finish()
    assert_nothing_lost(d)
    assert_duplex(d)
    assert system_software(d, subject.package["name"]) == original
    if when == "after merge":
        assert len(d.outages()) == outages + 1 == 2  # one more, for the restart
        assert all(o.end is not None for o in d.outages())
    else:
        assert d.outages() == []  # no outage for an abort before merge
