"""The digital twin's store: one SQLite file per simulated system.

Guarantees: every change goes through :meth:`TwinStore.transaction`, which holds an
``IMMEDIATE`` lock, reads the current state, lets the caller change it and writes it
back with the transactions the workload acknowledged meanwhile, in one SQLite
transaction.  A process killed at any instant leaves the twin as it was before or
after a whole transaction; several processes may open the same file at once.

A twin appears whole or not at all: :meth:`TwinStore.create` builds it in a private
temporary file beside its final name and publishes it with ``os.link``, which fails if
the name exists, so of several concurrent creators exactly one wins and no reader ever
opens a half-built file.

Time passes in :meth:`TwinStore.elapse`, in chunks that each commit, while the workload
acknowledges transactions into the ledger.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ftkit import store
from ftkit.errors import TargetError
from ftkit.model import (
    Adapter,
    DiskMember,
    DiskRole,
    ExternalDisk,
    Mirror,
    MirrorState,
    Module,
    ModuleState,
    PartnerState,
    Service,
    SideState,
    StartupType,
    SystemState,
    Team,
    from_dict,
    to_dict,
)
from ftkit.sim.parts import Marker

__all__ = [
    "BOOT_S",
    "POST_S",
    "SHUTDOWN_S",
    "SimSettings",
    "SystemExistsError",
    "TwinStore",
    "Txn",
    "automatic",
    "build_state",
    "is_twin",
    "load_scenario",
    "scenario_names",
]

# Realistic durations in simulated seconds, shared by the requests and the repairs.
SHUTDOWN_S = 60.0
POST_S = 120.0
BOOT_S = 90.0

Progress = Callable[[str, float, float], None]  # as ftkit.drivers.Progress


class SystemExistsError(TargetError):
    """A twin already exists under the name a creation asked for."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS twin (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL,
    sim TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    t_first REAL NOT NULL,
    t_last REAL NOT NULL,
    enclosure INTEGER
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    t REAL NOT NULL,
    source TEXT NOT NULL,
    message TEXT NOT NULL
);
"""


@dataclass
class SimSettings:
    """Simulator-only settings and bookkeeping, stored beside the system state."""

    seed: int = 0
    time_scale: float = 0.0
    rate_tps: float = 5.0
    resync_mb_s: float = 250.0
    scenario: str = "demo"
    next_seq: int = 1
    next_due: float = 0.0
    faults: list[dict[str, Any]] = field(default_factory=list)
    fired: int = 0  # faults fired so far (feeds the seeded RNG)
    marker: Marker | None = None  # where an unfinished multi-part request stands


# --- scenarios -------------------------------------------------------------


def scenario_names() -> list[str]:
    """Names of the scenarios that ship with the simulator (read-only)."""
    folder = resources.files("ftkit.sim") / "scenarios"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def _merge_named(base: list[dict[str, Any]], over: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged = {item["name"]: dict(item) for item in base}
    for item in over:
        merged.setdefault(item["name"], {}).update(item)
    return list(merged.values())


def load_scenario(name: str) -> dict[str, Any]:
    """The scenario's data with its ``extends`` chain resolved (read-only)."""
    names = scenario_names()
    if name not in names:
        raise TargetError(
            f"unknown scenario {name!r}", f"choose one of: {', '.join(names)}"
        )
    text = (resources.files("ftkit.sim") / "scenarios" / f"{name}.toml").read_text()
    data = tomllib.loads(text)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    base = load_scenario(parent)
    for key, value in data.items():
        if key in ("mirrors", "external", "teams", "services"):
            base[key] = _merge_named(base.get(key, []), value)
        elif key == "modules":
            mods = base.setdefault("modules", {})
            for mid, over in value.items():
                mods.setdefault(mid, {}).update(over)
        else:
            base[key] = value
    return base


def build_state(name: str, scenario: dict[str, Any], *, epoch: str,
                system_id: str = "") -> SystemState:
    """A fresh duplex system from scenario data, identified by SYSTEM_ID."""
    software = dict(scenario.get("software", {}))
    logs: dict[str, list[Any]] = {log: [] for log in scenario.get("event_logs", [])}
    startup = {
        s["name"]: StartupType(s.get("startup", "automatic"))
        for s in scenario.get("services", [])
        if s.get("exists", True)
    }
    modules: dict[int, Module] = {}
    for mid, kind, enc in ((0, "cpu", 0), (1, "cpu", 1), (10, "io", 0), (11, "io", 1)):
        modules[mid] = Module(id=mid, kind=kind, enclosure=enc, primary=(mid == 10))
    for mid, over in scenario.get("modules", {}).items():
        mod = modules[int(mid)]
        for key, value in over.items():
            setattr(mod, key, ModuleState(value) if key == "state" else value)
    mirrors: dict[str, Mirror] = {}
    for m in scenario.get("mirrors", []):
        role = DiskRole(m["role"])
        members = {
            enc: DiskMember(
                enclosure=enc,
                software=dict(software) if role is DiskRole.SYSTEM else {},
                startup=dict(startup) if role is DiskRole.SYSTEM else {},
                event_logs={k: list(v) for k, v in logs.items()} if role is DiskRole.SYSTEM else {},
            )
            for enc in (0, 1)
        }
        mirrors[m["name"]] = Mirror(
            name=m["name"],
            role=role,
            size_gb=float(m["size_gb"]),
            physical=m["physical"],
            state=MirrorState(m.get("state", "mirrored")),
            progress=float(m.get("progress", 1.0)),
            source=m.get("source"),
            members=members,
        )
    external = {
        e["name"]: ExternalDisk(name=e["name"], size_gb=float(e["size_gb"]))
        for e in scenario.get("external", [])
    }
    teams = {
        t["name"]: Team(
            name=t["name"],
            network=t["network"],
            address=t["address"],
            addressing=t.get("addressing", "static"),
            lease_renewable=t.get("lease_renewable", True),
            adapters=[Adapter(**a) for a in t.get("adapters", [])],
            in_use=list(t.get("in_use", [])),
        )
        for t in scenario.get("teams", [])
    }
    services = {
        s["name"]: Service(
            name=s["name"],
            exists=s.get("exists", True),
            stoppable=s.get("stoppable", True),
            start_s=float(s.get("start_s", 20.0)),
            stop_s=float(s.get("stop_s", 10.0)),
        )
        for s in scenario.get("services", [])
    }
    running = [s for s, st in startup.items() if st is StartupType.AUTOMATIC]
    sides = {
        enc: SideState(
            enclosure=enc,
            running=list(running),
            os=PartnerState.OS_UP if _enc_ok(modules, enc) else PartnerState.DC_OFF,
        )
        for enc in (0, 1)
    }
    critical = list(scenario.get("critical", []))
    apps_up = all(c in running for c in critical)
    down = [enc for enc in (0, 1) if not _enc_ok(modules, enc)]
    for enc in down:
        # an enclosure that is down runs nothing, and its disk members fall behind: the
        # mirrors are broken (as after a module failure), not silently "mirrored"
        sides[enc].running = []
        for mirror in mirrors.values():
            if mirror.state is MirrorState.MIRRORED:
                mirror.state, mirror.progress, mirror.source = MirrorState.BROKEN, 0.0, None
    up = [enc for enc in (0, 1) if enc not in down]
    return SystemState(
        name=name,
        model=scenario.get("model", "NEC Express5800/ft"),
        now=0.0,
        epoch=epoch,
        modules=modules,
        mirrors=mirrors,
        external=external,
        teams=teams,
        services=services,
        sides=sides,
        apps_on=up[0] if apps_up and up else None,
        apps_duplex=apps_up and not down,
        critical=critical,
        system_id=system_id,
    )


def _enc_ok(modules: dict[int, Module], enc: int) -> bool:
    return all(m.state is ModuleState.ONLINE for m in modules.values() if m.enclosure == enc)


def automatic(st: SystemState, enc: int) -> list[str]:
    """The services that start when enclosure ENC boots: automatic on its system disk."""
    boot = st.boot_disk().members[enc]
    return [s for s, t in boot.startup.items()
            if t is StartupType.AUTOMATIC and st.services.get(s) and st.services[s].exists]


# --- the store -------------------------------------------------------------


class Txn:
    """What a caller may read and change inside one twin transaction."""

    def __init__(self, conn: sqlite3.Connection, state: SystemState, sim: SimSettings) -> None:
        self._conn = conn
        self.state = state
        self.sim = sim

    # The workload --------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move simulated time on; the applications acknowledge transactions meanwhile."""
        if seconds < 0:
            raise ValueError("time does not run backwards")
        end = self.state.now + seconds
        self._run_workload(end)
        self._run_resyncs(seconds)
        self.state.now = end

    def _targets(self) -> list[list[list[int]]]:
        """The transaction range lists that an acknowledged write lands on."""
        st = self.state
        out: list[list[list[int]]] = []
        for mirror in st.mirrors.values():
            if mirror.role is not DiskRole.DATA:
                continue
            if mirror.state is MirrorState.DISABLED:
                home = st.production if st.production is not None else 0
                encs = [home]
            elif mirror.state is MirrorState.RESYNCING:
                encs = [mirror.source if mirror.source is not None else 0]
            else:
                encs = [0, 1]
            for enc in encs:
                member = mirror.members[enc]
                if member.healthy and (
                    mirror.state is MirrorState.DISABLED or st.enclosure_up(enc)
                ):
                    out.append(member.txs)
        for disk in st.external.values():
            if disk.healthy:
                out.append(disk.txs)
        return out

    def _run_workload(self, end: float) -> None:
        st, sim = self.state, self.sim
        if st.apps_on is None or sim.rate_tps <= 0:
            sim.next_due = max(sim.next_due, end)
            return
        if sim.next_due > end:
            return
        n = math.floor((end - sim.next_due) * sim.rate_tps + 1e-9) + 1
        first, last = sim.next_seq, sim.next_seq + n - 1
        t_first = sim.next_due
        t_last = t_first + (n - 1) / sim.rate_tps
        sim.next_seq = last + 1
        sim.next_due = t_last + 1 / sim.rate_tps
        for ranges in self._targets():
            _add_range(ranges, first, last)
        enclosure = None if st.apps_duplex else st.apps_on
        row = self._conn.execute(
            "SELECT id, last, t_last, enclosure FROM ledger ORDER BY id DESC LIMIT 1"
        ).fetchone()
        contiguous = row is not None and row[1] + 1 == first and row[3] == enclosure
        if contiguous and t_first - row[2] <= 1.5 / sim.rate_tps:
            self._conn.execute(
                "UPDATE ledger SET last = ?, t_last = ? WHERE id = ?", (last, t_last, row[0])
            )
        else:
            self._conn.execute(
                "INSERT INTO ledger (first, last, t_first, t_last, enclosure) VALUES (?,?,?,?,?)",
                (first, last, t_first, t_last, enclosure),
            )

    def apps_started(self, enclosure: int, *, duplex: bool = False) -> None:
        """The critical applications serve again, from ``enclosure``, as of now."""
        self.state.apps_on = enclosure
        self.state.apps_duplex = duplex
        self.sim.next_due = max(self.sim.next_due, self.state.now)

    def apps_stopped(self) -> None:
        """The critical applications stop serving as of now (the outage starts)."""
        self.state.apps_on = None
        self.state.apps_duplex = False

    def _run_resyncs(self, seconds: float) -> None:
        for mirror in self.state.mirrors.values():
            if mirror.state is not MirrorState.RESYNCING or mirror.source is None:
                continue
            target = 1 - mirror.source
            if not (self.state.enclosure_up(mirror.source) and self.state.enclosure_up(target)):
                continue
            total = mirror.size_gb * 1024 / self.sim.resync_mb_s
            mirror.progress = min(1.0, mirror.progress + seconds / total)
            if mirror.progress >= 1.0:
                finish_resync(mirror)

    def event(self, source: str, message: str) -> None:
        """Append to the twin's hardware event log."""
        self._conn.execute(
            "INSERT INTO events (t, source, message) VALUES (?,?,?)",
            (self.state.now, source, message),
        )


def finish_resync(mirror: Mirror) -> None:
    """Copy the source member onto its partner: the mirror is whole again."""
    assert mirror.source is not None
    src, dst = mirror.members[mirror.source], mirror.members[1 - mirror.source]
    dst.software = dict(src.software)
    dst.startup = dict(src.startup)
    dst.event_logs = {k: list(v) for k, v in src.event_logs.items()}
    dst.txs = [list(r) for r in src.txs]
    dst.healthy = True
    mirror.state = MirrorState.MIRRORED
    mirror.progress = 1.0
    mirror.source = None


def _add_range(ranges: list[list[int]], first: int, last: int) -> None:
    if ranges and ranges[-1][1] + 1 == first:
        ranges[-1][1] = last
    else:
        ranges.append([first, last])


class TwinStore:
    """One simulated system's SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise TargetError(
                f"no simulated system at {path}", "create it with: ftkit sim create NAME"
            )
        # look before switching the file to WAL: never change a file that is not a twin
        if not is_twin(path):
            raise TargetError(f"{path} is not an ftkit twin",
                              "name a file made by ftkit sim create, or remove this one "
                              "with: ftkit sim remove NAME --force")
        self._cache: tuple[int, SystemState, SimSettings] | None = None
        self._conn = self._connect(path)
        ident = self._conn.execute(
            "SELECT json_extract(state, '$.system_id') FROM twin WHERE id = 1").fetchone()
        if not (ident and ident[0]):
            self._give_identity()

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = store.connect(path)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _give_identity(self) -> None:
        """A twin made before systems had an id gets one, once (one transaction)."""
        with self.transaction() as txn:
            if not txn.state.system_id:
                txn.state.system_id = str(uuid.uuid4())

    @classmethod
    def create(cls, path: Path, state: SystemState, sim: SimSettings) -> TwinStore:
        """Write a new twin file whole, or nothing: refuses to overwrite one.

        The twin is built in a private temporary file in the same folder, then published
        under PATH by ``os.link``, which fails when PATH exists: whatever the concurrency,
        exactly one creator wins, the others get :class:`SystemExistsError`, and PATH
        never names a half-built file.  The temporary file is removed either way.
        """
        if path.exists():
            raise _exists(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # a name of its own (SQLite makes the file with the usual permissions)
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.creating"
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)  # rollback journal, no WAL
            try:
                conn.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO twin (id, state, sim, version) VALUES (1, ?, ?, 1)",
                    (_state_json(state, sim), json.dumps(to_dict(sim))),
                )
                conn.execute("COMMIT")
            finally:
                conn.close()
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise _exists(path) from None
        finally:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}-journal").unlink(missing_ok=True)
        return cls(path)

    def close(self) -> None:
        self._conn.close()

    def read(self) -> tuple[SystemState, SimSettings]:
        """The current state (read-only: callers must not change what it returns). Decoded
        once per version of the twin: reading an unchanged twin again costs one query
        (of its version)."""
        cached = self._cache
        if cached is not None and cached[0] == self._conn.execute(
                "SELECT version FROM twin WHERE id = 1").fetchone()[0]:
            return cached[1], cached[2]
        row = self._conn.execute("SELECT version, state, sim FROM twin WHERE id = 1").fetchone()
        state, sim = self._decode(row[1], row[2])
        self._cache = (row[0], state, sim)
        return state, sim

    def now(self) -> float:
        """The simulated clock (read-only): the version, and only when it is not the one
        read or written last, the clock out of the stored state; nothing decoded."""
        cached = self._cache
        if cached is not None:
            row = self._conn.execute("SELECT version FROM twin WHERE id = 1").fetchone()
            if cached[0] == row[0]:
                return float(cached[1].now)
        row = self._conn.execute(
            "SELECT version, json_extract(state, '$.now') FROM twin WHERE id = 1").fetchone()
        return float(row[1])

    @staticmethod
    def _decode(state: str, sim: str) -> tuple[SystemState, SimSettings]:
        return (from_dict(SystemState, json.loads(state)),
                from_dict(SimSettings, json.loads(sim)))

    @contextmanager
    def transaction(self) -> Iterator[Txn]:
        """Read, change and write the twin in one IMMEDIATE transaction."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            row = self._conn.execute("SELECT state, sim FROM twin WHERE id = 1").fetchone()
            state, sim = self._decode(row[0], row[1])  # a copy of its own: it changes
            txn = Txn(self._conn, state, sim)
            yield txn
            version = self._conn.execute(
                "UPDATE twin SET state = ?, sim = ?, version = version + 1 WHERE id = 1"
                " RETURNING version",
                (_state_json(txn.state, txn.sim), json.dumps(to_dict(txn.sim))),
            ).fetchone()[0]
            self._cache = None
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        # what this transaction wrote is what a read of this version decodes: kept, so
        # that the first read after a request does not decode it again
        self._cache = (version, txn.state, txn.sim)

    def elapse(self, seconds: float, label: str, progress: Progress | None,
               *, chunks: int = 20) -> None:
        """Let SECONDS of simulated time pass in CHUNKS transactions, each one committed
        (a process killed meanwhile leaves only whole chunks done), sleeping in
        proportion to the time scale; ``progress(label, done, total)`` after each."""
        if seconds <= 0:
            return
        scale = self.read()[1].time_scale
        step = seconds / chunks
        done = 0.0
        for _ in range(chunks):
            with self.transaction() as txn:
                txn.advance(step)
            done += step
            if progress is not None:
                progress(label, min(done, seconds), seconds)
            if scale > 0:
                time.sleep(step * scale)

    def version(self) -> int:
        """How many transactions changed this twin (read-only)."""
        return int(self._conn.execute("SELECT version FROM twin WHERE id = 1").fetchone()[0])

    def ledger(self) -> list[tuple[int, int, float, float, int | None]]:
        """Runs of acknowledged transactions: (first, last, t_first, t_last, enclosure)."""
        return [
            tuple(r)
            for r in self._conn.execute(
                "SELECT first, last, t_first, t_last, enclosure FROM ledger ORDER BY id"
            )
        ]

    def events(self, limit: int = 200) -> list[tuple[float, str, str]]:
        """The newest hardware events, oldest first (read-only)."""
        rows = self._conn.execute(
            "SELECT t, source, message FROM events ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [tuple(r) for r in reversed(rows)]


def is_twin(path: Path) -> bool:
    """Whether the existing file PATH is an SQLite file with a twin table (read-only)."""
    probe = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        row = probe.execute("SELECT name FROM sqlite_master WHERE name='twin'").fetchone()
    except sqlite3.DatabaseError:  # not SQLite at all, or empty
        row = None
    finally:
        probe.close()
    return row is not None


def _exists(path: Path) -> SystemExistsError:
    return SystemExistsError(
        f"a simulated system already exists at {path}",
        "pick another name, or remove it with: ftkit sim remove NAME",
    )


def _state_json(state: SystemState, sim: SimSettings) -> str:
    """The state as stored: its unfinished request is always the marker's."""
    state.unfinished = sim.marker.request if sim.marker is not None else None
    return json.dumps(to_dict(state))
