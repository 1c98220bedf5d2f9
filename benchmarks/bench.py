"""``make bench``: every figure of the performance issue beside its baseline, one run.

Run from the repository root::

    python benchmarks/bench.py [--runs N]

In order: a runbook run as a whole process beside bare papermill (bench_run.py: ratios,
peak memory, the kernel's slowest cells); ``reports verify`` at 1,000 and 10,000 entries,
incremental, and the HTML sizes of the reports just made beside nbconvert's (bench_archive.py);
a journal's full and incremental verify, sessions table included (bench_journal.py);
the engine's cost per request (bench_process.py); cold start, twin open and memory of
the simulator (bench_sim.py); a campaign of 20 systems beside 20 runs one after another, and
how it grows to 100 (bench_campaign.py). A part that fails is reported and the rest still runs:
this is a report, not a test, and it exits 0.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def part(title: str, argv: list[str]) -> None:
    print(f"\n== {title} " + "=" * max(0, 74 - len(title)), flush=True)
    started = time.perf_counter()
    code = subprocess.run([sys.executable, *argv], cwd=HERE.parent, check=False).returncode
    note = "" if code == 0 else f"; FAILED with exit {code}, figures above may be missing"
    print(f"({time.perf_counter() - started:.0f} s{note})", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="whole processes per kind")
    args = parser.parse_args()
    keep = Path(tempfile.mkdtemp(prefix="ftkit-bench-reports-"))
    started = time.perf_counter()
    try:
        part("ftkit run vs papermill", [str(HERE / "bench_run.py"), "--runs", str(args.runs),
                                        "--keep", str(keep)])
        reports = sorted(str(p) for p in keep.glob("*.ipynb"))
        wanted = [next((p for p in reports if "readiness-check" in p), None),
                  next((p for p in reversed(reports) if "active-upgrade" in p), None)]
        part("reports verify and HTML size", [str(HERE / "bench_archive.py"),
                                              *[p for p in wanted if p]])
        part("journal verify, sessions under the chain", [str(HERE / "bench_journal.py")])
        part("engine per request", [str(HERE / "bench_process.py")])
        part("simulator: cold start, twin open, memory", [str(HERE / "bench_sim.py")])
        part("campaign on Dask vs one run after another", [str(HERE / "bench_campaign.py")])
    finally:
        shutil.rmtree(keep, ignore_errors=True)
    print(f"\nmake bench: {time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
