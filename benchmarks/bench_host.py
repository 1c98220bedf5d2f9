"""Merge outage of the host driver on this Linux host (prints figures; not a test).

Run as root: python benchmarks/bench_host.py

Brings up a fresh example site (orderdesk behind ftkit's front), runs a steady load of
25 requests a second through the front, and upgrades 1.0.0 -> 2.0.0 five times (split,
install, reboot the Upgrade side, merge, then abort back to 1.0.0 for the next round).
Prints the merge outage measured from the load client's acknowledgements (median of 5 and
worst), the abort's restart outage, and the failed requests. Goal: merge outage <= 1 s and
0 failed requests.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
RUNS = 5


def main() -> int:
    from host_rig import Load, host_site, host_skip_reason, package

    reason = host_skip_reason()
    if reason:
        print(f"bench_host: skipped: {reason}")
        return 0
    merges, aborts = [], []
    with tempfile.TemporaryDirectory(prefix="ftkit-bench-host-") as folder, \
            host_site(Path(folder) / "site") as (site, driver):
        load = Load(site, rate=25)
        try:
            load.wait_for_acks(driver)
            for _ in range(RUNS):
                driver.split(critical=["orderdesk"], upgrade_ip=str(driver.site.upgrade_ip))
                driver.install(package())
                driver.reboot_upgrade_side()
                driver.merge(critical=["orderdesk"])
                merges.append(driver.outages()[-1].seconds)
                driver.wait(1)
                driver.abort()
                driver.finish()
                aborts.append(driver.outages()[-1].seconds)
                driver.wait(1)
        finally:
            summary = load.stop()
        lost = driver.lost_transactions()
    merge_s = [m for m in merges if m is not None]
    abort_s = [a for a in aborts if a is not None]
    print(f"merge outage:   median {statistics.median(merge_s):.3f} s, worst "
          f"{max(merge_s):.3f} s over {RUNS} merges (goal <= 1 s)")
    print(f"abort restart:  median {statistics.median(abort_s):.3f} s")
    print(f"failed requests: {summary['failed']:.0f} of "
          f"{summary['acknowledged'] + summary['failed']:.0f} (goal 0); lost transactions: "
          f"{lost}; longest gap seen by the client: {summary['longest_gap_s']:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
