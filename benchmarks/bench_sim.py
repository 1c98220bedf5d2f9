"""Speed and memory figures of the simulator and the CLI (a script, not a test).

Run from the repository root::

    python benchmarks/bench_sim.py

It prints:

- cold start of ``ftkit status sim://bench --json`` and ``ftkit sim list`` beside
  ``python -c pass`` (median of 5 fresh processes each, and the ratio);
- simulated hours per wall second at time scale 0 for an eight-hour workload followed by
  split, merge and commit (a full RDR resync of the demo's 1 TB data mirror);
- the cost of opening a twin (median of 50 ``connect()`` + ``status()``);
- peak Python memory (tracemalloc) of the eight-hour run.

Everything happens under a temporary ``$FTKIT_HOME``; nothing of the user's is touched.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RUNS = 5
OPENS = 50
CRITICAL = ["OrderDB", "WebFront"]


def median_wall(argv: list[str], env: dict[str, str], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cold_start(env: dict[str, str], *, note: str) -> None:
    py = sys.executable
    for argv in ([py, "-c", "pass"], [py, "-m", "ftkit", "sim", "list"]):  # warm caches
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    base = median_wall([py, "-c", "pass"], env)
    print(f"cold start, median of {RUNS} processes ({note})")
    print(f"  python -c pass                      {base * 1000:7.1f} ms")
    for label, argv in (
        ("ftkit status sim://bench --json", [py, "-m", "ftkit", "status", "sim://bench",
                                             "--json"]),
        ("ftkit sim list", [py, "-m", "ftkit", "sim", "list"]),
    ):
        wall = median_wall(argv, env)
        print(f"  {label:<35} {wall * 1000:7.1f} ms  ({wall / base:.1f}× python -c pass)")


def eight_hours(target: str) -> tuple[float, float, float]:
    """Wait 8 h, split, merge, commit, finish; (simulated s, wall s, merge outage s)."""
    from ftkit.drivers import connect
    from ftkit.sim.driver import create_system

    create_system(target).close()
    driver = connect(target)
    t0 = driver.status().now
    started = time.perf_counter()
    driver.wait(8 * 3600)
    driver.split(critical=CRITICAL, upgrade_ip="192.0.2.50")
    driver.merge(critical=CRITICAL)
    driver.commit()
    driver.finish()
    wall = time.perf_counter() - started
    simulated = driver.status().now - t0
    assert driver.lost_transactions() == 0
    [outage] = driver.outages()
    driver.close()
    return simulated, wall, outage.seconds or 0.0


def open_cost(target: str) -> float:
    from ftkit.drivers import connect

    times = []
    for _ in range(OPENS):
        started = time.perf_counter()
        driver = connect(target)
        driver.status()
        driver.close()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def peak_memory(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ftkit-bench-") as home:
        os.environ["FTKIT_HOME"] = home
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
        from ftkit.sim.driver import create_system

        create_system("sim://bench").close()
        # as installed: bytecode cached (in a private folder, not beside the sources)
        cached = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = str(Path(home) / "pycache")
        cold_start(cached, note="bytecode cached")
        if env.get("PYTHONDONTWRITEBYTECODE"):
            print()
            cold_start(env, note="PYTHONDONTWRITEBYTECODE set: every source compiled each time")

        simulated, wall, outage = eight_hours("sim://eight")
        print("\neight-hour workload, then split, merge, commit (1 TB resync), time scale 0")
        print(f"  {simulated / 3600:.2f} simulated h in {wall:.3f} s wall = "
              f"{simulated / 3600 / wall:,.0f} simulated h per wall second "
              f"(merge outage {outage:.0f} s)")

        cost = open_cost("sim://eight")
        print(f"\nopening a twin (connect + status), median of {OPENS}: {cost * 1000:.2f} ms")

        peak = peak_memory(lambda: eight_hours("sim://memory"))
        print(f"\npeak Python memory of the eight-hour run (tracemalloc): {peak / 1024:,.0f} KiB")


if __name__ == "__main__":
    main()
