"""The host driver: Active Upgrade of a real service on one Linux host (``host://``).

The vendor's parts, done with ordinary Linux ones (SPEC §2–3):

- the two **system disks** are two copies of the service's system tree (a virtual
  environment): enclosure 0's is the site's tree, enclosure 1's its partner copy beside it;
  the **data disk** is the service's data directory;
- **ExecuteSplit** copies the running tree onto the other one (``cp --reflink=auto``), and
  brings the **Upgrade side** up in a network namespace of its own, reachable only at the
  upgrade-side address (a veth pair), with the data directory hidden (an empty tmpfs over it
  in a mount namespace) and the critical service disabled; what answers there is an agent
  run by the Upgrade side's own interpreter;
- **install** runs the package's installer inside the Upgrade side (no network, no data);
  **reboot** restarts the Upgrade side's processes;
- **ExecuteMerge** holds new connections at the front (a TCP proxy ftkit owns on the
  production address), stops the service gracefully on the Production side, fsyncs the data
  directory, starts the service from the upgraded tree with the data, health-checks it and
  routes the front to it: clients see latency, not errors;
- **Commit** copies the upgraded tree over the old one (no outage); **Abort** discards the
  Upgrade side, after a merge restarting the service from the original tree (one outage).

Every request is resumable: it records its progress (``step``) in a JSON state file beside
the site, written atomically under a lock, and carries on from there when called again
after a failure or a killed controller.  The front, the services and the agent run detached
with pid files, so they outlive the controller.  The workload's facts come from the load
client's ledger of acknowledged transactions and the service's own database.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ftkit.drivers import ActionResult, Outage, Progress, run_executable
from ftkit.errors import (
    ActionTimeoutError,
    FaultError,
    StepFailedError,
    TargetError,
    TransitionError,
)
from ftkit.host import daemons
from ftkit.host.front import command as front_command
from ftkit.host.site import Site, load_site
from ftkit.model import (
    Adapter,
    DiskMember,
    DiskRole,
    Mirror,
    MirrorState,
    Module,
    PartnerState,
    Service,
    SideRole,
    SideState,
    StartupType,
    SystemState,
    Team,
)

__all__ = ["FAULTS", "HostDriver", "open_host", "prerequisites"]

AGENT = Path(__file__).with_name("agent.py")
#: Faults a drill may arm: name -> the points it can fire at (the first is the default).
FAULTS: dict[str, tuple[str, ...]] = {
    "service-stop-refused": ("merge",),
    "service-start-refused": ("merge", "abort"),
    "installer-fail": ("install",),
    "upgrade-side-dies": ("now", "install", "reboot", "merge"),
    "health-check-fail": ("merge",),
}
_EVENTS_KEPT = 500
#: how long the workload may be silent before a switch and still count as running
_LOAD_ACTIVE_S = 5.0


def prerequisites() -> list[str]:
    """What this host lacks for the driver, one phrase each (read-only)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces and mounts need it)")
    for tool, package in (("ip", "iproute2"), ("unshare", "util-linux"), ("cp", "coreutils")):
        if shutil.which(tool) is None:
            missing.append(f"the '{tool}' command (Debian package {package})")
    if not missing:
        probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                               check=False)
        if probe.returncode != 0:
            missing.append(f"'ip netns' ({probe.stderr.strip() or 'not supported'})")
    return missing


def open_host(target: str, rest: str) -> HostDriver:
    """The ``host:///abs/site.toml`` factory registered in :mod:`ftkit.drivers`."""
    site = load_site(rest)
    missing = prerequisites()
    if missing:
        raise TargetError(f"the host driver cannot work here: it needs {'; '.join(missing)}",
                          "run as root on Linux with iproute2 installed (make host-deps)")
    driver = HostDriver(target, site)
    if not driver._file.exists():
        raise TargetError(f"the site {site.file} is not up",
                          f"bring it up first: python -m ftkit.host up {site.file}")
    driver.keep_front()
    return driver


def _now() -> float:
    return time.time()


class HostDriver:
    """The ``host://`` driver."""

    def __init__(self, target: str, site: Site) -> None:
        self.target = target
        self.site = site
        self.dir = site.state_dir
        self._file = self.dir / "state.json"

    def state_dir(self) -> Path:
        """The site's state folder (``state`` in the site file), where ftkit keeps this
        system's journal and controller lock beside ``state.json``; read-only."""
        return self.dir

    # --- persistent state --------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self._file.read_text())
        except FileNotFoundError:
            raise TargetError(f"site {self.site.file} is not up (no {self._file})",
                              f"connect to {self.target} once to bring it up") from None
        return state

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "state.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _txn(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write of the state file, atomically (one transaction)."""
        with self._lock():
            state = self._read()
            yield state
            self._write(state)

    def _write(self, state: dict[str, Any]) -> None:
        partial = self._file.with_suffix(".part")
        with open(partial, "w") as out:
            json.dump(state, out, indent=1, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(self._file)
        _fsync_dir(self.dir)

    def _event(self, state: dict[str, Any], source: str, text: str) -> None:
        state["events"] = [*state["events"], [_now() - state["epoch_ts"], source, text]][
            -_EVENTS_KEPT:]

    def events(self, limit: int = 200) -> list[tuple[float, str, str]]:
        """The driver's activity log, newest last (read-only)."""
        return [(float(t), str(source), str(text))
                for t, source, text in self._read()["events"][-limit:]]

    # --- places --------------------------------------------------------------------

    def _pidfile(self, what: str) -> Path:
        return self.dir / "pids" / f"{what}.pid"

    def _log(self, what: str) -> Path:
        return self.dir / "logs" / f"{what}.log"

    def _control(self, state: dict[str, Any]) -> str:
        # an abstract Unix socket: no file to clean up, no path-length limit
        return f"ftkit-front-{state['system_id']}"

    # --- bringing the site up and down -------------------------------------------------

    def bring_up(self) -> None:
        """Bring the site up: on first use create the state (the trees mirrored, the service
        running from enclosure 0's tree, the front routing to it); later only restart the
        front if it died. One transaction."""
        python = self.site.tree / "bin" / "python"
        if not python.exists():
            raise TargetError(f"no system tree at {self.site.tree} (no bin/python)",
                              "create the service's virtual environment there "
                              "(examples/host/prepare.py does it for the example)")
        with self._lock():
            if not self._file.exists():
                self._initialise()
        self.keep_front()

    def keep_front(self) -> None:
        """Restart the front (ftkit's own plumbing, not the system) if it is not running:
        clients reach the service only through it."""
        state = self._read()
        if not daemons.alive(self._pidfile("front")):
            enclosure = state["apps_on"] if state["apps_on"] is not None else 0
            self._start_front(state, enclosure)

    def _initialise(self) -> None:
        system_id = uuid.uuid4().hex[:12]
        started = datetime.now(UTC).replace(microsecond=0)
        state: dict[str, Any] = {
            "system_id": system_id, "epoch": started.isoformat(),
            "epoch_ts": started.timestamp(), "ns": f"ftk-{system_id}",
            "veth": f"ftk{system_id[:9]}",
            "split": False, "merged": False, "production": None, "apps_on": 0, "step": "",
            "mirrors": {"tree": _mirrored(), "data": _mirrored()},
            "os": {"0": PartnerState.OS_UP.value, "1": PartnerState.OS_UP.value},
            "reboot_pending": {"0": False, "1": False},
            "startup": {e: {self.site.service: StartupType.AUTOMATIC.value} for e in "01"},
            "saved_startup": {}, "critical": [], "staged": {}, "downs": [], "faults": [],
            "events": [], "isolated": False, "address": "",
        }
        self.site.data.mkdir(parents=True, exist_ok=True)
        _copy_tree(self.site.tree_of(0), self.site.tree_of(1))
        self._event(state, "site", f"brought up: system id {system_id}, trees mirrored")
        if not daemons.alive(self._pidfile("service-0")):
            self._start_service(0)
            if not self._healthy(0, self.site.start_timeout_s):
                daemons.stop(self._pidfile("service-0"), timeout_s=1)
                raise TargetError(f"{self.site.service} did not become healthy on "
                                  f"port {self.site.ports[0]}",
                                  f"read {self._log('service-0')}")
        self._write(state)

    def teardown(self) -> None:
        """Stop everything the driver started (services, agent, front), delete the Upgrade
        side's namespace and forget the state: the site is down."""
        state = json.loads(self._file.read_text()) if self._file.exists() else None
        for what in ("agent", "service-0", "service-1", "front"):
            pidfile = self._pidfile(what)
            pid = daemons.read_pid(pidfile)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            daemons.stop(pidfile, timeout_s=5)
        if state is not None:
            _run(["ip", "netns", "del", state["ns"]], check=False)
            _run(["ip", "link", "del", state["veth"] + "h"], check=False)
            self._file.unlink(missing_ok=True)

    def _start_front(self, state: dict[str, Any], enclosure: int) -> None:
        site = self.site
        daemons.spawn(
            [_python(), "-m", "ftkit.host.front",
             "--listen", f"{site.production_host}:{site.production_port}",
             "--upstream", f"127.0.0.1:{site.ports[enclosure]}",
             "--control", self._control(state)],
            pidfile=self._pidfile("front"), log=self._log("front"), env=_ftkit_env())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                self._front(state, "status")
                return
            time.sleep(0.02)
        raise TargetError(f"the front did not start on {site.production_host}:"
                          f"{site.production_port}", f"read {self._log('front')}")

    def _front(self, state: dict[str, Any], line: str) -> dict[str, object]:
        return front_command(self._control(state), line)

    # --- the service, the agent, the namespace -------------------------------------------

    def _service_command(self, enclosure: int) -> list[str]:
        tree = self.site.tree_of(enclosure)
        values = {"{python}": str(tree / "bin" / "python"), "{tree}": str(tree),
                  "{port}": str(self.site.ports[enclosure]), "{data}": str(self.site.data)}
        out = []
        for part in self.site.command:
            for key, value in values.items():
                part = part.replace(key, value)
            out.append(part)
        return out

    def _start_service(self, enclosure: int) -> None:
        tree = self.site.tree_of(enclosure)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL"))}
        env |= {"PATH": f"{tree / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
                "VIRTUAL_ENV": str(tree)}
        daemons.spawn(self._service_command(enclosure),
                      pidfile=self._pidfile(f"service-{enclosure}"),
                      log=self._log(f"service-{enclosure}"), env=env, cwd=tree)

    def _healthy(self, enclosure: int, timeout_s: float) -> bool:
        """Poll the service's health URL until it answers 200 or TIMEOUT_S pass, or the
        service exits."""
        url = f"http://127.0.0.1:{self.site.ports[enclosure]}{self.site.health}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=max(0.2, deadline - time.monotonic())
                                            ) as answer:
                    if answer.status == 200:
                        return True
            except (OSError, urllib.error.URLError):
                pass
            if not daemons.alive(self._pidfile(f"service-{enclosure}")):
                return False
            time.sleep(0.01)
        return False

    def _ns(self, state: dict[str, Any], *command: str) -> list[str]:
        """COMMAND run inside the Upgrade side: its network namespace, with the data
        directory hidden under an empty tmpfs in a private mount namespace."""
        hide = ('mount -t tmpfs -o size=4k,mode=000 ftkit-hidden "$FTKIT_DATA" '
                '&& exec "$@"')
        return ["ip", "netns", "exec", state["ns"], "unshare", "--mount",
                "--propagation", "private", "sh", "-c", hide, "sh", *command]

    def _ns_env(self, enclosure: int) -> dict[str, str]:
        tree = self.site.tree_of(enclosure)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL"))}
        return env | {"PATH": f"{tree / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
                      "VIRTUAL_ENV": str(tree), "FTKIT_DATA": str(self.site.data),
                      "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

    def _isolate(self, state: dict[str, Any]) -> None:
        """Create the Upgrade side's namespace and veth pair (afresh if half made)."""
        ns, veth, site = state["ns"], state["veth"], self.site
        _run(["ip", "netns", "del", ns], check=False)
        _run(["ip", "link", "del", veth + "h"], check=False)
        _run(["ip", "netns", "add", ns])
        _run(["ip", "link", "add", veth + "h", "type", "veth", "peer", "name", veth + "u"])
        _run(["ip", "link", "set", veth + "u", "netns", ns])
        _run(["ip", "addr", "add", f"{site.host_ip}/{site.prefix}", "dev", veth + "h"])
        _run(["ip", "link", "set", veth + "h", "up"])
        _run(["ip", "-n", ns, "addr", "add", f"{site.upgrade_ip}/{site.prefix}",
              "dev", veth + "u"])
        _run(["ip", "-n", ns, "link", "set", veth + "u", "up"])
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])

    def _unisolate(self, state: dict[str, Any]) -> None:
        daemons.stop(self._pidfile("agent"), timeout_s=5)
        _run(["ip", "netns", "del", state["ns"]], check=False)
        _run(["ip", "link", "del", state["veth"] + "h"], check=False)

    def _start_agent(self, state: dict[str, Any], enclosure: int) -> None:
        tree = self.site.tree_of(enclosure)
        daemons.stop(self._pidfile("agent"), timeout_s=5)
        daemons.spawn(self._ns(state, str(tree / "bin" / "python"), "-I", str(AGENT),
                               "--listen", f"{self.site.upgrade_ip}:{self.site.production_port}",
                               "--data", str(self.site.data)),
                      pidfile=self._pidfile("agent"), log=self._log("agent"),
                      env=self._ns_env(enclosure))
        deadline = time.monotonic() + self.site.start_timeout_s
        while time.monotonic() < deadline:
            answer = self.agent()
            if answer is not None:
                if answer.get("data_visible"):
                    raise StepFailedError("the Upgrade side can see the data directory",
                                          "check the mount namespace support, then Retry",
                                          step="split", reason="data directory not hidden")
                return
            if not daemons.alive(self._pidfile("agent")):
                break
            time.sleep(0.02)
        raise StepFailedError(f"the Upgrade side did not come up at {self.site.upgrade_ip}",
                              f"read {self._log('agent')}, then Retry or Abort",
                              step="split", reason="Upgrade side not up")

    def agent(self) -> dict[str, Any] | None:
        """What the Upgrade side's agent answers at the upgrade-side address, None when
        nothing answers (read-only)."""
        url = f"http://{self.site.upgrade_ip}:{self.site.production_port}/"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                data: dict[str, Any] = json.loads(answer.read())
                return data
        except (OSError, ValueError):
            return None

    # --- reading -------------------------------------------------------------------

    def status(self) -> SystemState:
        state = self._read()
        site = self.site
        split, merged = state["split"], state["merged"]
        production = state["production"]
        apps_on = state["apps_on"]
        if apps_on is not None and not daemons.alive(self._pidfile(f"service-{apps_on}")):
            apps_on = None
        primary = (production if split else state["apps_on"]) or 0
        modules = {
            0: Module(0, "cpu", 0), 1: Module(1, "cpu", 1),
            10: Module(10, "io", 0, primary=primary == 0),
            11: Module(11, "io", 1, primary=primary == 1),
        }
        software = {e: _versions(site.tree_of(e)) for e in (0, 1)}
        tree_members = {e: DiskMember(e, software=software[e], startup={
            k: StartupType(v) for k, v in state["startup"][str(e)].items()}) for e in (0, 1)}
        mirrors = {
            "tree": _mirror("tree", DiskRole.SYSTEM, state["mirrors"]["tree"], tree_members,
                            physical=str(site.tree)),
            "data": _mirror("data", DiskRole.DATA, state["mirrors"]["data"],
                            {e: DiskMember(e) for e in (0, 1)}, physical=str(site.data)),
        }
        sides = {}
        for e in (0, 1):
            os_state = PartnerState(state["os"][str(e)])
            upgrade = split and production is not None and e == 1 - production
            if (upgrade and not merged and os_state is PartnerState.OS_UP
                    and not daemons.alive(self._pidfile("agent"))):
                os_state = PartnerState.OS_CRASHED
            role = SideRole.DUPLEX
            if split and production is not None:
                role = SideRole.PRODUCTION if e == production else SideRole.UPGRADE
            running = ([site.service] if daemons.alive(self._pidfile(f"service-{e}"))
                       and apps_on == e else [])
            sides[e] = SideState(e, role=role, os=os_state, running=running,
                                 isolated=upgrade and state["isolated"],
                                 address=state["address"] if upgrade else "",
                                 reboot_pending=state["reboot_pending"][str(e)])
        team = Team(name="production", network=site.network, address=site.production_host,
                    adapters=[Adapter("front", 0), Adapter("front", 1)],
                    in_use=[str(site.host_ip)])
        extra: dict[str, Any] = {}
        if "system_id" in SystemState.__dataclass_fields__:
            extra["system_id"] = state["system_id"]
        return SystemState(
            name=site.name, model="Linux host (ftkit host driver)",
            now=_now() - state["epoch_ts"], epoch=state["epoch"], modules=modules,
            mirrors=mirrors, external={}, teams={team.name: team},
            services={site.service: Service(site.service, start_s=site.start_timeout_s,
                                            stop_s=site.stop_timeout_s)},
            sides=sides, split=split, merged=merged, production=production,
            apps_on=apps_on, apps_duplex=not split, critical=list(state["critical"]),
            staged=dict(state["staged"]),
            saved_startup={k: StartupType(v) for k, v in state["saved_startup"].items()},
            **extra)

    def wait(self, seconds: float, *, progress: Progress | None = None) -> None:
        """Let SECONDS of real time pass while the service runs (a soak)."""
        start = time.monotonic()
        while (done := time.monotonic() - start) < seconds:
            if progress is not None:
                progress("soak", done, seconds)
            time.sleep(min(1.0, seconds - done))
        if progress is not None:
            progress("soak", seconds, seconds)

    # --- the workload's facts -----------------------------------------------------------

    def _ledger(self) -> sqlite3.Connection | None:
        if not self.site.ledger.exists():
            return None
        conn = sqlite3.connect(self.site.ledger, timeout=30)
        try:
            conn.execute("SELECT 1 FROM acks LIMIT 1")
        except sqlite3.Error:
            conn.close()
            return None
        return conn

    def acknowledged(self) -> int:
        conn = self._ledger()
        if conn is None:
            return 0
        with contextlib.closing(conn):
            return int(conn.execute("SELECT count(*) FROM acks").fetchone()[0])

    def lost_transactions(self) -> int:
        """Acknowledged transactions (the load client's ledger) missing from the service's
        database in the data directory (read-only)."""
        acked = self.acknowledged()
        if acked == 0:
            return 0
        database = self.site.data / self.site.database
        if not database.exists():
            return acked
        conn = sqlite3.connect(database, timeout=30)
        with contextlib.closing(conn):
            conn.execute("ATTACH DATABASE ? AS ledger", (str(self.site.ledger),))
            return int(conn.execute(
                f"SELECT count(*) FROM ledger.acks WHERE txn NOT IN ({self.site.query})"
            ).fetchone()[0])

    def outages(self) -> list[Outage]:
        """Every gap in service: each switch the driver made (from the last acknowledgement
        before the new side served to the first one after), and each run of failed requests
        the load client recorded outside them (read-only)."""
        state = self._read()
        epoch = state["epoch_ts"]
        acks: list[float] = []
        failures: list[float] = []
        conn = self._ledger()
        if conn is not None:
            with contextlib.closing(conn):
                acks = [r[0] for r in conn.execute("SELECT t FROM acks ORDER BY t")]
                with contextlib.suppress(sqlite3.Error):
                    failures = [r[0] for r in conn.execute("SELECT t FROM failures ORDER BY t")]
        found: list[tuple[float, float | None, int | None, int | None]] = []
        windows: list[tuple[float, float]] = []
        for down in state["downs"]:
            hold, ready = down["hold"], down["ready"]
            before = _last_before(acks, ready if ready is not None else _now())
            active = before is not None and before > hold - _LOAD_ACTIVE_S
            start = before if active and before is not None else hold
            if ready is None:
                found.append((start, None, down["before"], None))
                windows.append((hold, _now()))
                continue
            after = _first_from(acks, ready)
            end = after if after is not None else (None if active else ready)
            found.append((start, end, down["before"], down["after"]))
            windows.append((hold, (end or ready) + 1.0))
        runs: list[list[float]] = []  # failed requests with no acknowledgement between
        for t in failures:
            if any(a <= t <= b for a, b in windows):
                continue
            between = _first_from(acks, runs[-1][-1]) if runs else None
            if runs and (between is None or between > t):
                runs[-1].append(t)
            else:
                runs.append([t])
        for failed_run in runs:
            start = _last_before(acks, failed_run[0])
            found.append((start if start is not None else failed_run[0],
                          _first_from(acks, failed_run[-1]), state["apps_on"], state["apps_on"]))
        found.sort(key=lambda o: o[0])
        return [Outage(s - epoch, None if e is None else e - epoch, b, a)
                for s, e, b, a in found]

    # --- faults -------------------------------------------------------------------

    def inject(self, name: str, *, point: str | None = None, times: int = 1) -> dict[str, Any]:
        """Arm a fault for a drill (one transaction); ``point='now'`` makes it happen at
        once. Faults: see :data:`FAULTS`."""
        points = FAULTS.get(name)
        if points is None:
            raise FaultError(f"no host fault named {name!r}", f"use one of: {', '.join(FAULTS)}")
        point = point or points[0]
        if point not in points:
            raise FaultError(f"{name} cannot fire at {point!r}",
                             f"use one of: {', '.join(points)}")
        if times < 1:
            raise FaultError(f"times = {times} must be at least 1", "arm it once or more")
        record = {"name": name, "point": point, "times": times}
        if point == "now":
            self._apply(record)
            return record
        with self._txn() as state:
            state["faults"].append(record)
            self._event(state, "fault", f"armed {name} at {point}")
        return record

    def disarm(self, name: str | None = None) -> list[dict[str, Any]]:
        """Remove armed faults (all, or those named NAME); returns them (one transaction)."""
        with self._txn() as state:
            cleared = [f for f in state["faults"] if name is None or f["name"] == name]
            state["faults"] = [f for f in state["faults"] if f not in cleared]
        return cleared

    def _take(self, point: str, name: str) -> bool:
        with self._txn() as state:
            for record in state["faults"]:
                if record["point"] == point and record["name"] == name:
                    record["times"] -= 1
                    if record["times"] <= 0:
                        state["faults"].remove(record)
                    self._event(state, "fault", f"{name} fires at {point}")
                    return True
        return False

    def _apply(self, record: Mapping[str, Any]) -> None:
        if record["name"] == "upgrade-side-dies":
            pid = daemons.read_pid(self._pidfile("agent"))
            if pid is None:
                raise FaultError("the Upgrade side is not running", "split first")
            os.kill(pid, signal.SIGKILL)
            daemons.stop(self._pidfile("agent"), timeout_s=5)  # waits until it is gone
            with self._txn() as state:
                if state["production"] is not None:
                    state["os"][str(1 - state["production"])] = PartnerState.OS_CRASHED.value
                self._event(state, "fault", "the Upgrade side's agent was killed")

    def _upgrade_side_ready(self, up: int, step: str) -> None:
        """Refuse STEP unless the Upgrade side (enclosure UP) is OS Up, then let an armed
        ``dies`` fault at STEP fire."""
        os_state = self.status().sides[up].os
        if os_state is not PartnerState.OS_UP:
            raise StepFailedError(f"the Upgrade side is {os_state.value}",
                                  "reboot it, then Retry", step=step,
                                  reason="Upgrade side not up")
        self._upgrade_side_dies(step)

    def _upgrade_side_dies(self, point: str) -> None:
        if self._take(point, "upgrade-side-dies"):
            self._apply({"name": "upgrade-side-dies"})
            raise StepFailedError(
                "the Upgrade side died (its agent was killed)",
                "reboot the Upgrade side (Retry does), or Abort", step=point,
                reason="Upgrade side OS Crashed")

    # --- Active Upgrade requests ----------------------------------------------------------

    def stage(self, label: str, digest: str) -> None:
        state = self._read()
        if state["staged"].get(label) == digest:
            return
        if state["split"]:
            raise TransitionError(
                f"cannot stage {label} while split: the Upgrade side has no network",
                "stage every package before the split (abort, then start again)")
        name, _, version = label.rpartition(" ")
        prefix = f"{name.replace('-', '_').lower()}-{version}"
        files = sorted(p.name for p in self.site.staging.glob("*")
                       if p.name.replace("-", "_").lower().startswith(prefix.replace("-", "_"))
                       ) if self.site.staging.is_dir() else []
        if not files:
            raise StepFailedError(
                f"no update file for {label} in {self.site.staging}",
                f"put {name}'s {version} wheel there before the split (offline install), "
                "then Retry", step="PrepareSplit", reason=f"{label} not staged")
        with self._txn() as state:
            state["staged"][label] = digest
            self._event(state, "stage", f"{label} staged: {', '.join(files)}")

    def split(self, *, critical: Sequence[str], upgrade_ip: str,
              progress: Progress | None = None) -> None:
        state = self._read()
        if state["split"]:
            return
        if upgrade_ip and upgrade_ip != str(self.site.upgrade_ip):
            raise StepFailedError(
                f"upgrade-side IP {upgrade_ip} is not the site's {self.site.upgrade_ip}",
                f"set [network] upgrade_ip = \"{self.site.upgrade_ip}\" in the configuration",
                step="split", reason="upgrade-side IP differs from the site")
        prod = state["apps_on"]
        if prod is None or not daemons.alive(self._pidfile(f"service-{prod}")):
            raise StepFailedError(f"{self.site.service} is not running", "start it first",
                                  step="split", reason="service down")
        up = 1 - prod
        if state["step"] and not state["step"].startswith("split:"):
            raise TransitionError(f"step {state['step']} is unfinished",
                                  "finish it (Retry) before splitting")
        if state["step"] in ("", "split:copy"):
            _report(progress, "split: copy the system tree to the Upgrade side", 0, 3)
            with self._txn() as st:
                st["step"] = "split:copy"
                st["mirrors"]["tree"] = {"state": "disabled", "source": None, "progress": 1.0}
            _copy_tree(self.site.tree_of(prod), self.site.tree_of(up))
            with self._txn() as st:
                st["step"] = "split:isolate"
        if self._read()["step"] == "split:isolate":
            _report(progress, "split: isolate the Upgrade side", 1, 3)
            self._isolate(state)
            with self._txn() as st:
                st["step"] = "split:start"
                st["isolated"], st["address"] = True, str(self.site.upgrade_ip)
        if self._read()["step"] == "split:start":
            _report(progress, "split: start the Upgrade side", 2, 3)
            with self._txn() as st:
                st["startup"][str(up)] = {
                    k: (StartupType.DISABLED.value if k in critical else v)
                    for k, v in st["startup"][str(prod)].items()}
            self._start_agent(state, up)
            with self._txn() as st:
                st["saved_startup"] = {name: st["startup"][str(prod)].get(
                    name, StartupType.AUTOMATIC.value) for name in critical}
                st["split"], st["production"], st["critical"] = True, prod, list(critical)
                st["mirrors"] = {"tree": _state("disabled"), "data": _state("disabled")}
                st["os"][str(up)] = PartnerState.OS_UP.value
                st["step"] = ""
                self._event(st, "active-upgrade",
                            f"split: Production side {prod}, Upgrade side {up} at "
                            f"{self.site.upgrade_ip} in namespace {st['ns']}")
            _report(progress, "split: Upgrade side up", 3, 3)

    def _upgrade_enclosure(self, state: dict[str, Any]) -> int:
        if not state["split"] or state["production"] is None:
            raise TransitionError("the system is not split", "split it first")
        return 1 - int(state["production"])

    def install(self, package: Mapping[str, Any], *, progress: Progress | None = None) -> None:
        state = self._read()
        up = self._upgrade_enclosure(state)
        name, version = str(package["name"]), str(package["version"])
        if state["merged"]:
            raise TransitionError("the system is merged", "install before PrepareMerge")
        if _versions(self.site.tree_of(up)).get(name) == version:
            return
        self._upgrade_side_ready(up, "install")
        label = f"install {name} {version}"
        _report(progress, label, 0, 3)
        if package.get("needs_reboot"):
            with self._txn() as st:
                st["reboot_pending"][str(up)] = True
        installer = package.get("installer") or {}
        command = str(installer.get("command") or "")
        if not command:
            raise StepFailedError(f"{name} {version} names no installer command",
                                  "write [installer] command in its manifest", step="install",
                                  reason="no installer command")
        timeout_s = float(package.get("timeout_min") or 30.0) * 60
        where = self.site.staging
        failing = self._take("install", "installer-fail")
        with contextlib.ExitStack() as stack:
            if failing:  # the staged files are missing: the installer fails for real
                import tempfile

                where = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            _report(progress, label, 1, 3)
            try:
                done = subprocess.run(self._ns(state, "sh", "-c", command),
                                      env=self._ns_env(up), cwd=where, capture_output=True,
                                      text=True, timeout=timeout_s, check=False)
            except subprocess.TimeoutExpired:
                raise ActionTimeoutError(
                    f"installer of {name} {version} ran past its {timeout_s / 60:.0f} min "
                    "timeout", "Retry runs it again; Abort returns to the original software",
                    step="install", reason="installer timed out") from None
        with self._txn() as st:
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            self._event(st, "installer", f"{command} exited {done.returncode}: "
                        + " | ".join(tail))
        if done.returncode != 0:
            raise StepFailedError(
                f"installer of {name} {version} exited with code {done.returncode}: "
                + (done.stderr.strip().splitlines() or ["no output"])[-1],
                "read the installer's output in the activity log, then Retry or Abort",
                step="install", reason=f"installer exit code {done.returncode}")
        found = _versions(self.site.tree_of(up)).get(name)
        if found != version:
            raise StepFailedError(
                f"after the installer, {name} on the Upgrade side is {found or 'missing'}, "
                f"not {version}", "check the installer command in the manifest, then Retry",
                step="install", reason="installed version differs")
        _report(progress, label, 3, 3)

    def reboot_upgrade_side(self, *, progress: Progress | None = None) -> None:
        state = self._read()
        up = self._upgrade_enclosure(state)
        if state["merged"]:
            raise TransitionError("the system is merged: the Upgrade side runs the service",
                                  "reboot before ExecuteMerge")
        self._upgrade_side_dies("reboot")
        _report(progress, "reboot the Upgrade side: stop", 0, 2)
        with self._txn() as st:
            st["os"][str(up)] = PartnerState.OS_REBOOTING.value
        daemons.stop(self._pidfile("agent"), timeout_s=self.site.stop_timeout_s)
        with self._txn() as st:
            st["os"][str(up)] = PartnerState.OS_BOOTING.value
        _report(progress, "reboot the Upgrade side: start", 1, 2)
        if _run(["ip", "netns", "pids", state["ns"]], check=False).returncode != 0:
            self._isolate(state)
        self._start_agent(state, up)
        with self._txn() as st:
            st["os"][str(up)] = PartnerState.OS_UP.value
            st["reboot_pending"][str(up)] = False
            self._event(st, "active-upgrade", "Upgrade side restarted: OS Up")
        _report(progress, "reboot the Upgrade side: up", 2, 2)

    # the switch: hold, stop, flush, start, check, route ------------------------------------

    def _stop_service(self, enclosure: int, point: str) -> bool:
        """Stop the service of ENCLOSURE gracefully; False if it would not stop in time."""
        pidfile = self._pidfile(f"service-{enclosure}")
        pid = daemons.read_pid(pidfile)
        if pid is not None and self._take(point, "service-stop-refused"):
            os.kill(pid, signal.SIGSTOP)  # hangs: it cannot act on the stop request
        return daemons.stop(pidfile, timeout_s=self.site.stop_timeout_s, kill=False)

    def _start_checked(self, enclosure: int, point: str) -> str:
        """Start the service of ENCLOSURE and health-check it; '' or why it failed."""
        pidfile = self._pidfile(f"service-{enclosure}")
        if daemons.alive(pidfile) and self._healthy(enclosure, 0.5):
            return ""
        daemons.stop(pidfile, timeout_s=1)
        blocker = None
        if self._take(point, "service-start-refused"):  # its port is taken: it cannot start
            blocker = socket.create_server(("127.0.0.1", self.site.ports[enclosure]))
        try:
            self._start_service(enclosure)
            if self._take(point, "health-check-fail"):
                pid = daemons.read_pid(pidfile)
                if pid is not None:
                    os.kill(pid, signal.SIGSTOP)  # up but answering nobody
            if self._healthy(enclosure, self.site.start_timeout_s):
                return ""
        finally:
            if blocker is not None:
                blocker.close()
        if daemons.alive(pidfile):
            reason = (f"did not pass its health check {self.site.health} within "
                      f"{self.site.start_timeout_s:g} s")
        else:
            reason = "refused to start (it exited)"
        daemons.stop(pidfile, timeout_s=0, kill=True)
        return reason

    def _route(self, state: dict[str, Any], enclosure: int) -> None:
        self._front(state, f"route 127.0.0.1:{self.site.ports[enclosure]}")

    def _await_first_ack(self, since: float) -> None:
        """Wait briefly until the workload (if one runs) is acknowledged again, so that the
        outage just ended is measured when the request returns."""
        conn = self._ledger()
        if conn is None:
            return
        with contextlib.closing(conn):
            last = conn.execute("SELECT max(t) FROM acks WHERE t < ?", (since,)).fetchone()[0]
            if last is None or last < since - _LOAD_ACTIVE_S:
                return
            deadline = time.monotonic() + _LOAD_ACTIVE_S
            while time.monotonic() < deadline:
                if conn.execute("SELECT 1 FROM acks WHERE t >= ? LIMIT 1", (since,)).fetchone():
                    return
                time.sleep(0.01)

    def _serve_again(self, enclosure: int, point: str, *, faults: bool = False) -> None:
        """Back to serving on ENCLOSURE (its tree, the data) after a failed switch, or at
        an abort (FAULTS: armed faults of POINT may fire)."""
        state = self._read()
        for other in (0, 1):
            pid = daemons.read_pid(self._pidfile(f"service-{other}"))
            if pid is not None:
                os.kill(pid, signal.SIGCONT)
        daemons.stop(self._pidfile(f"service-{1 - enclosure}"), timeout_s=0)
        why = self._start_checked(enclosure, point if faults else f"{point}:recover")
        if why:
            raise StepFailedError(
                f"{self.site.service} {why} on enclosure {enclosure} while recovering",
                f"read {self._log(f'service-{enclosure}')}, then Retry", step=point,
                reason="service down")
        self._route(state, enclosure)
        ready = _now()
        with self._txn() as st:
            if st["downs"] and st["downs"][-1]["ready"] is None:
                st["downs"][-1]["ready"], st["downs"][-1]["after"] = ready, enclosure
            st["apps_on"] = enclosure
        self._await_first_ack(ready)

    def merge(self, *, critical: Sequence[str], progress: Progress | None = None) -> None:
        state = self._read()
        if state["merged"] and state["step"] == "":
            return
        up = self._upgrade_enclosure(state)
        prod = 1 - up
        steps = 5
        if state["step"] == "":
            self._upgrade_side_ready(up, "merge")
            _report(progress, "merge: hold new connections at the front", 0, steps)
            self._front(state, "hold")
            with self._txn() as st:
                st["downs"].append({"hold": _now(), "ready": None, "before": prod,
                                    "after": up})
                st["step"] = "merge:stop"
                self._event(st, "active-upgrade", "merge: front holds new connections")
        if self._read()["step"] == "merge:stop":
            _report(progress, f"merge: stop {self.site.service} on the Production side",
                    1, steps)
            self._front(state, "hold")
            self._front(state, f"drain {self.site.stop_timeout_s}")
            if not self._stop_service(prod, "merge"):
                pid = daemons.read_pid(self._pidfile(f"service-{prod}"))
                if pid is not None:
                    os.kill(pid, signal.SIGCONT)
                daemons.stop(self._pidfile(f"service-{prod}"), timeout_s=self.site.stop_timeout_s)
                self._serve_again(prod, "merge")
                with self._txn() as st:
                    st["step"] = ""
                raise StepFailedError(
                    f"{self.site.service} refused to stop within "
                    f"{self.site.stop_timeout_s:g} s on the Production side",
                    f"see why it will not stop ({self._log(f'service-{prod}')}), then Retry "
                    "(or Abort)", step="merge", reason=f"{self.site.service} refused to stop")
            _fsync_tree(self.site.data)
            with self._txn() as st:
                st["step"] = "merge:hand-over"
                self._event(st, "active-upgrade",
                            "merge: service stopped on the Production side, data flushed")
        if self._read()["step"] == "merge:hand-over":
            _report(progress, "merge: hand the data directory over", 2, steps)
            self._unisolate(state)
            with self._txn() as st:
                st["startup"][str(up)].update(st["saved_startup"])
                st["isolated"], st["address"] = False, ""
                st["step"] = "merge:start"
        if self._read()["step"] == "merge:start":
            _report(progress, f"merge: start {self.site.service} on the Upgrade side",
                    3, steps)
            why = self._start_checked(up, "merge")
            if why:
                self._serve_again(prod, "merge")
                self._reisolate(up)
                raise StepFailedError(
                    f"{self.site.service} {why} on the Upgrade side; it serves from the "
                    "Production side again", f"read {self._log(f'service-{up}')}, then "
                    "Retry (or Abort)", step="merge", reason=f"{self.site.service} {why}")
            with self._txn() as st:
                st["step"] = "merge:route"
        if self._read()["step"] == "merge:route":
            _report(progress, "merge: route the front to the Upgrade side", 4, steps)
            self._route(state, up)
            ready = _now()
            with self._txn() as st:
                if st["downs"] and st["downs"][-1]["ready"] is None:
                    st["downs"][-1]["ready"] = ready
                st["merged"], st["apps_on"], st["step"] = True, up, ""
                st["os"][str(prod)] = PartnerState.OS_SHUT_DOWN.value
                self._event(st, "active-upgrade",
                            f"merge: {self.site.service} runs on enclosure {up}")
            self._await_first_ack(ready)
            _report(progress, "merge: done", steps, steps)

    def _reisolate(self, up: int) -> None:
        """After a failed merge: the Upgrade side back in its namespace, service disabled."""
        state = self._read()
        self._isolate(state)
        self._start_agent(state, up)
        with self._txn() as st:
            st["startup"][str(up)] = {k: (StartupType.DISABLED.value if k in st["critical"]
                                          else v) for k, v in st["startup"][str(up)].items()}
            st["isolated"], st["address"] = True, str(self.site.upgrade_ip)
            st["step"] = ""

    def backup_event_logs(self, names: Sequence[str]) -> dict[str, list[str]]:
        """Event logs of the Production side: ``SERVICE`` (its service's log) and ``ftkit``
        (the driver's activity log) (read-only)."""
        state = self._read()
        side = state["production"] if state["production"] is not None else (
            state["apps_on"] or 0)
        known = {self.site.service, "ftkit"}
        missing = [n for n in names if n not in known]
        if missing:
            raise StepFailedError(f"no event log named {', '.join(missing)}",
                                  f"name one of: {', '.join(sorted(known))}", step="backup",
                                  reason="unknown event log")
        logs: dict[str, list[str]] = {}
        for name in names:
            if name == "ftkit":
                logs[name] = [f"{t:.3f} {source}: {text}" for t, source, text in
                              state["events"]]
            else:
                path = self._log(f"service-{side}")
                logs[name] = path.read_text().splitlines() if path.exists() else []
        return logs

    def commit(self, *, progress: Progress | None = None) -> None:
        state = self._read()
        if state["step"] != "commit:resync":
            if not state["merged"]:
                if not state["split"] and state["step"] == "":
                    return
                raise TransitionError("commit needs a merged system", "merge first")
            up = self._upgrade_enclosure(state)
            with self._txn() as st:
                st["mirrors"] = {"tree": _state("resyncing", up, 0.0),
                                 "data": _state("resyncing", up, 0.0)}
                st["os"][str(1 - up)] = PartnerState.OS_UP.value
                st["split"], st["merged"], st["production"] = False, False, None
                st["step"] = "commit:resync"
                self._event(st, "active-upgrade",
                            "commit: the old system tree resyncs from the upgraded one")
        self._resync(progress, "commit")

    def _resync(self, progress: Progress | None, what: str) -> None:
        state = self._read()
        source = state["mirrors"]["tree"]["source"]
        _report(progress, f"{what}: resync the system tree", 0, 2)
        _copy_tree(self.site.tree_of(source), self.site.tree_of(1 - source))
        _report(progress, f"{what}: resync the system tree", 1, 2)
        with self._txn() as st:
            st["startup"][str(1 - source)] = dict(st["startup"][str(source)])
            st["mirrors"] = {"tree": _mirrored(), "data": _mirrored()}
            st["step"] = ""
            self._event(st, "active-upgrade", f"{what}: trees mirrored again")
        _report(progress, f"{what}: resync done", 2, 2)

    def abort(self, *, progress: Progress | None = None) -> None:
        state = self._read()
        step = state["step"]
        if step == "commit:resync":
            raise TransitionError("commit has started: abort is refused",
                                  "let the commit finish, then Finish")
        if not state["split"] and not step.startswith(("abort", "split:")):
            return
        if step == "abort:resync":
            self._abort_resync(progress)
            return
        prod = state["production"] if state["production"] is not None else state["apps_on"]
        up = 1 - prod
        if step.startswith("split:"):
            step = ""
        after_merge = state["merged"] or step.startswith("merge:") or step == "abort:restart"
        if after_merge and step != "abort:restart":
            _report(progress, "abort: hold new connections at the front", 0, 4)
            self._front(state, "hold")
            with self._txn() as st:
                if not st["downs"] or st["downs"][-1]["ready"] is not None:
                    st["downs"].append({"hold": _now(), "ready": None, "before": up,
                                        "after": prod})
                st["step"] = "abort:restart"
        if self._read()["step"] == "abort:restart":
            _report(progress, f"abort: stop {self.site.service} on the Upgrade side", 1, 4)
            self._front(state, f"drain {self.site.stop_timeout_s}")
            if not self._stop_service(up, "abort"):
                daemons.stop(self._pidfile(f"service-{up}"), timeout_s=0)  # abort must win
                with self._txn() as st:
                    self._event(st, "active-upgrade", f"abort: {self.site.service} did not "
                                "stop in time on the Upgrade side and was killed")
            _fsync_tree(self.site.data)
            _report(progress, f"abort: start {self.site.service} from the original tree", 2, 4)
            self._serve_again(prod, "abort", faults=True)
            with self._txn() as st:
                st["os"][str(prod)] = PartnerState.OS_UP.value
                self._event(st, "active-upgrade",
                            f"abort: {self.site.service} runs from the original tree again")
        _report(progress, "abort: discard the Upgrade side", 3, 4)
        self._unisolate(state)
        with self._txn() as st:
            st["mirrors"] = {"tree": _state("resyncing", prod, 0.0),
                             "data": _state("resyncing", prod, 0.0)}
            st["os"] = {"0": PartnerState.OS_UP.value, "1": PartnerState.OS_UP.value}
            st["reboot_pending"] = {"0": False, "1": False}
            st["split"], st["merged"], st["production"] = False, False, None
            st["isolated"], st["address"], st["apps_on"] = False, "", prod
            st["step"] = "abort:resync"
        self._abort_resync(progress)

    def _abort_resync(self, progress: Progress | None) -> None:
        self._resync(progress, "abort")

    def finish(self) -> None:
        state = self._read()
        if state["split"]:
            raise TransitionError("the system is still split", "commit or abort first")
        busy = [n for n, m in state["mirrors"].items() if m["state"] == "resyncing"]
        if busy:
            raise TransitionError(f"resync still running on {', '.join(busy)}",
                                  "wait for it (Retry the commit or abort), then Finish")
        with self._txn() as st:
            if st["staged"] or st["critical"] or st["saved_startup"]:
                self._event(st, "active-upgrade", "finish: back to Idle")
            st["staged"], st["critical"], st["saved_startup"] = {}, [], {}

    # --- custom actions ------------------------------------------------------------------

    def run_custom_action(self, path: str, *, args: Sequence[str], env: Mapping[str, str],
                          timeout_s: float, request: str, side: str) -> ActionResult:
        """Run the executable for real: on the Upgrade side (inside its namespace, its tree
        first on PATH, the data directory hidden) while it is isolated, otherwise on the
        host. Besides ENV it gets ``FTKIT_SITE``, ``FTKIT_DATA`` and ``FTKIT_PRODUCTION``
        (the front's HOST:PORT); nothing else of the caller's environment. On the isolated
        Upgrade side its tree comes first on PATH."""
        state = self._read()
        command = [path, *args]
        site = {"FTKIT_SITE": str(self.site.file), "FTKIT_DATA": str(self.site.data),
                "FTKIT_PRODUCTION": f"{self.site.production_host}:{self.site.production_port}"}
        run_env = {**env, **site}
        if side == "Upgrade" and state["split"] and not state["merged"] and state["isolated"]:
            up = 1 - state["production"]
            command = self._ns(state, *command)
            tree = self.site.tree_of(up)
            run_env = {**env, **site, "VIRTUAL_ENV": str(tree),
                       "PATH": f"{tree / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"}
        return run_executable(command, env=run_env, timeout_s=timeout_s)

    def close(self) -> None:
        """Nothing to release: every request opens and closes what it uses."""


# --- helpers ------------------------------------------------------------------------------


def _report(progress: Progress | None, label: str, done: float, total: float) -> None:
    if progress is not None:
        progress(label, done, total)


def _state(name: str, source: int | None = None, progress: float = 1.0) -> dict[str, Any]:
    return {"state": name, "source": source, "progress": progress}


def _mirrored() -> dict[str, Any]:
    return _state("mirrored")


def _mirror(name: str, role: DiskRole, data: Mapping[str, Any],
            members: dict[int, DiskMember], *, physical: str) -> Mirror:
    # the data directory grows with every order: its size would make each snapshot differ
    size = _size_gb(Path(physical)) if role is DiskRole.SYSTEM else 0.0
    return Mirror(name=name, role=role, size_gb=size,
                  physical=f"{role.value}:{physical}",
                  state=MirrorState(data["state"]), progress=float(data["progress"]),
                  source=data["source"], members=members)


def _size_gb(path: Path) -> float:
    """What a tree or data directory holds, in GB (read-only)."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return round(total / 1e9, 6)


def _versions(tree: Path) -> dict[str, str]:
    """Installed distributions of a virtual environment: name -> version (read-only)."""
    found: dict[str, str] = {}
    for metadata in sorted(tree.glob("lib/python*/site-packages/*.dist-info/METADATA")):
        name = version = None
        with contextlib.suppress(OSError), open(metadata, encoding="utf-8") as lines:
            for line in lines:
                if not line.strip():
                    break
                if line.startswith("Name:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("Version:"):
                    version = line.split(":", 1)[1].strip()
        if name and version:
            found[name] = version
    return found


def _copy_tree(source: Path, target: Path) -> None:
    """Replace TARGET by a copy of SOURCE (reflinked where the filesystem allows); a
    half-made copy from an interrupted run is thrown away first."""
    partial = target.with_name(target.name + ".part")
    old = target.with_name(target.name + ".old")
    for leftover in (partial, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    _run(["cp", "--reflink=auto", "-a", str(source), str(partial)])
    if target.exists():
        target.rename(old)
    partial.rename(target)
    if old.exists():
        shutil.rmtree(old)
    _fsync_dir(target.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    """Flush every file of the data directory and the directories themselves."""
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                fd = os.open(os.path.join(folder, name), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        _fsync_dir(Path(folder))


def _run(command: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise StepFailedError(f"{' '.join(command)} failed: {done.stderr.strip()}",
                              "fix the host's networking, then Retry", step="host",
                              reason=f"{command[0]} exit {done.returncode}")
    return done


def _python() -> str:
    import sys

    return sys.executable


def _ftkit_env() -> dict[str, str]:
    """The environment a daemon of ftkit's own runs with: ftkit importable."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{root}:{path}" if path else root}


def _last_before(times: list[float], t: float) -> float | None:
    import bisect

    i = bisect.bisect_left(times, t)
    return times[i - 1] if i > 0 else None


def _first_from(times: list[float], t: float) -> float | None:
    import bisect

    i = bisect.bisect_left(times, t)
    return times[i] if i < len(times) else None
