"""Engine cost of the Active Upgrade process (prints figures; not a test).

Run: python benchmarks/bench_process.py

Prints the wall time of a whole simulated upgrade at time scale 0 (simulated hours per
wall second), the engine's own cost per request (journal writes included; every call on
the driver, its queries too, timed as the driver's; goal ≤ 3 ms) beside the driver's share,
its CPU time (what a loaded machine's disk does not change), the journal's write
transactions per upgrade and how many of them wait for the disk, beside what one synced
commit costs on this disk now (a bare SQLite commit made as the journal makes them: the
floor under the synced ones), and the journal's size. Ratios are measured in one run.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "demo-config.toml"
PACKAGES = [ROOT / "examples" / "packages" / "os-hotfix.toml",
            ROOT / "examples" / "packages" / "orderdb-12.5.toml"]
RUNS = 9


def _driver_calls() -> tuple[str, ...]:
    """Every call the engine makes on a driver, timed as the driver's (the twin's) cost:
    the Driver protocol's methods (queries such as status() and outages() as well as the
    requests) and the simulator's clock, which ``clock_of`` reads."""
    from ftkit.drivers import Driver

    return (*sorted(name for name in vars(Driver) if not name.startswith("_")
                    and callable(vars(Driver)[name])), "now")


def main() -> None:
    os.environ["FTKIT_HOME"] = tempfile.mkdtemp(prefix="ftkit-bench-")
    from ftkit.decisions import ParameterDecisions
    from ftkit.process import open_session
    from ftkit.sim.driver import SimDriver, create_system

    driver_calls = _driver_calls()

    walls, sims, per_request, driver_share, entries = [], [], [], [], []
    cpu_per_request, writes, synced = [], [], []
    for _ in range(RUNS):
        driver = create_system(f"sim://b-{uuid.uuid4().hex[:8]}")
        spent = {"driver": 0.0, "driver_cpu": 0.0}
        for name in driver_calls:
            real = getattr(SimDriver, name)

            def timed(*a, _real=real, _driver=driver, _spent=spent,  # type: ignore[no-untyped-def]
                      **k):
                t, c = time.perf_counter(), time.process_time()
                try:
                    return _real(_driver, *a[1:] if a and a[0] is _driver else a, **k)
                finally:
                    _spent["driver"] += time.perf_counter() - t
                    _spent["driver_cpu"] += time.process_time() - c

            setattr(driver, name, timed)
        session = open_session(driver, CONFIG, PACKAGES, operator="bench")
        statements: list[str] = []
        session.journal._conn.set_trace_callback(statements.append)  # count transactions
        t0, c0 = time.perf_counter(), time.process_time()
        session.run(ParameterDecisions({"split": "proceed", "merge": "proceed",
                                        "commit": "commit"}), soak_minutes=60)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        session.journal._conn.set_trace_callback(None)
        walls.append(wall)
        sims.append(driver.status().now / 3600)
        n = len(session.journal.entries(session.record.id, kinds=["intent"]))
        per_request.append((wall - spent["driver"]) / n)
        cpu_per_request.append((cpu - spent["driver_cpu"]) / n)
        writes.append(statements.count("BEGIN IMMEDIATE"))
        synced.append(_synced(statements))
        driver_share.append(spent["driver"] / wall)
        entries.append(len(session.journal.entries(session.record.id)))
    wall, sim = statistics.median(walls), statistics.median(sims)
    print(f"whole upgrade at time scale 0 (median of {RUNS}): {wall * 1000:.0f} ms wall "
          f"for {sim:.2f} simulated hours = {sim / wall:.0f} simulated h per wall s")
    print(f"engine cost per request (journal included, driver excluded): "
          f"{statistics.median(per_request) * 1000:.1f} ms (goal ≤ 3 ms); its CPU time "
          f"{statistics.median(cpu_per_request) * 1000:.1f} ms")
    floor = _synced_commit(Path(os.environ["FTKIT_HOME"]) / "disk-probe.db")
    print(f"journal write transactions per upgrade: {statistics.median(writes):.0f}, "
          f"{statistics.median(synced):.0f} of them waiting for the disk; a bare synced "
          f"commit on this disk now {floor * 1000:.2f} ms (that many: "
          f"{statistics.median(synced) * floor / 7 * 1000:.1f} ms a request)")
    print(f"driver (twin) share of the wall time: {statistics.median(driver_share):.0%}")
    print(f"journal entries per upgrade: {statistics.median(entries):.0f}")


def _synced(statements: list[str]) -> int:
    """How many of the write transactions in STATEMENTS (as SQLite ran them) waited for
    the disk: the journal sets ``PRAGMA synchronous`` only when it changes."""
    synced, commits = True, 0
    for sql in statements:
        if sql.startswith("PRAGMA synchronous"):
            synced = sql.endswith("FULL")
        commits += sql == "BEGIN IMMEDIATE" and synced
    return commits


def _synced_commit(path: Path, commits: int = 40) -> float:
    """Median wall time of one small synced commit in a WAL journal at PATH, made as the
    journal makes them (``synchronous = FULL``, the WAL reserve topped up)."""
    from ftkit import store

    conn = store.connect(path)
    reserve = store.WalReserve(path)
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (n INTEGER, note TEXT)")
    times = []
    for n in range(commits):
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        reserve.top_up()
        conn.execute("INSERT INTO t VALUES (?, ?)", (n, "x" * 300))
        conn.execute("COMMIT")
        times.append(time.perf_counter() - started)
    reserve.close()
    conn.close()
    return statistics.median(times)


if __name__ == "__main__":
    main()
