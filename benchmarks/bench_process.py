"""Engine cost of the Active Upgrade process (prints figures; not a test).

Run: python benchmarks/bench_process.py

Prints the wall time of a whole simulated upgrade at time scale 0 (simulated hours per
wall second), the engine's own cost per request (journal writes included) beside the
driver's share, and the journal's size. Ratios are measured in one run.
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
RUNS = 5


def main() -> None:
    os.environ["FTKIT_HOME"] = tempfile.mkdtemp(prefix="ftkit-bench-")
    from ftkit.decisions import ParameterDecisions
    from ftkit.process import open_session
    from ftkit.sim.driver import SimDriver, create_system

    walls, sims, per_request, driver_share, entries = [], [], [], [], []
    for _ in range(RUNS):
        driver = create_system(f"sim://b-{uuid.uuid4().hex[:8]}")
        spent = {"driver": 0.0}
        for name in ("split", "install", "reboot_upgrade_side", "merge", "commit", "abort",
                     "finish", "stage", "wait", "run_custom_action"):
            real = getattr(SimDriver, name)

            def timed(*a, _real=real, _driver=driver, _spent=spent,  # type: ignore[no-untyped-def]
                      **k):
                t = time.perf_counter()
                try:
                    return _real(_driver, *a[1:] if a and a[0] is _driver else a, **k)
                finally:
                    _spent["driver"] += time.perf_counter() - t

            setattr(driver, name, timed)
        session = open_session(driver, CONFIG, PACKAGES, operator="bench")
        t0 = time.perf_counter()
        session.run(ParameterDecisions({"split": "proceed", "merge": "proceed",
                                        "commit": "commit"}), soak_minutes=60)
        wall = time.perf_counter() - t0
        walls.append(wall)
        sims.append(driver.status().now / 3600)
        n = len(session.journal.entries(session.record.id, kinds=["intent"]))
        per_request.append((wall - spent["driver"]) / n)
        driver_share.append(spent["driver"] / wall)
        entries.append(len(session.journal.entries(session.record.id)))
    wall, sim = statistics.median(walls), statistics.median(sims)
    print(f"whole upgrade at time scale 0 (median of {RUNS}): {wall * 1000:.0f} ms wall "
          f"for {sim:.2f} simulated hours = {sim / wall:.0f} simulated h per wall s")
    print(f"engine cost per request (journal included, driver excluded): "
          f"{statistics.median(per_request) * 1000:.1f} ms")
    print(f"driver (twin) share of the wall time: {statistics.median(driver_share):.0%}")
    print(f"journal entries per upgrade: {statistics.median(entries):.0f}")


if __name__ == "__main__":
    main()
