"""What a runbook run costs beside papermill itself (prints figures; not a test).

Run from the repository root::

    python benchmarks/bench_run.py [--runs N] [--keep FOLDER]

Measured as whole processes, interleaved so that a change in the machine's load hits
each kind alike, median of N (default 5) each:

- ``bare``: ``python -m papermill`` of a two-cell notebook (the baseline);
- ``runbook``: ``python -m papermill`` of runbooks/active-upgrade.ipynb, auto mode, a new
  simulated system each time (no archive);
- ``ftkit run``: ``ftkit run active-upgrade`` with the same parameters (checks, kernel,
  archive: notebook, HTML, ledger line).

For each it prints the wall time, the ratio to bare, and the peak resident memory of
the process and its kernel (``wait4``'s ``ru_maxrss``). Then the time of each cell of the
last runbook run (papermill records it), the slowest first: the kernel's profile. With
``--keep`` the reports (and a readiness check's) stay in FOLDER for bench_archive.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DECISIONS = "{split: proceed, merge: proceed, commit: commit}"
GOAL_RATIO = 1.25


def _bare_notebook(path: Path) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                             new_code_cell("print(x)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, str(path))


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes, the process and the children it waited for)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}… exited {proc.returncode}: "
                           f"{err.strip().splitlines()[-1:] or ''}")
    return wall, usage.ru_maxrss * 1024


def measure(runs: int, scratch: Path) -> dict[str, list[tuple[float, int]]]:
    env = dict(os.environ)
    env["FTKIT_HOME"] = str(scratch / "home")
    env["FTKIT_REPORTS"] = str(scratch / "reports")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    py = sys.executable
    bare = scratch / "bare.ipynb"
    _bare_notebook(bare)
    runbook = REPO / "runbooks" / "active-upgrade.ipynb"

    def commands(n: int) -> dict[str, list[str]]:
        common = ["-p", "mode", "auto", "-p", "operator", "bench",
                  "-p", "change_id", f"CHG-BENCH-{n}"]
        return {
            "bare": [py, "-m", "papermill", "--no-progress-bar", str(bare),
                     str(scratch / "bare-out.ipynb")],
            "runbook": [py, "-m", "papermill", "--no-progress-bar", str(runbook),
                        str(scratch / "runbook-out.ipynb"), "-p", "system",
                        f"sim://pm{n}", "-y", f"decisions: {DECISIONS}", *common],
            "ftkit run": [py, "-m", "ftkit", "run", "active-upgrade", "-p", "system",
                          f"sim://run{n}", "-p", "decisions", DECISIONS, *common],
        }

    # warm-up: bytecode, font cache, kernelspec lookup (not counted)
    for argv in commands(0).values():
        _timed(argv, env, REPO)
    results: dict[str, list[tuple[float, int]]] = {k: [] for k in commands(0)}
    for n in range(1, runs + 1):
        for kind, argv in commands(n).items():
            results[kind].append(_timed(argv, env, REPO))
    _timed([py, "-m", "ftkit", "run", "readiness-check", "-p", "system", "sim://run1"],
           env, REPO)
    return results


def report(results: dict[str, list[tuple[float, int]]], scratch: Path) -> None:
    runs = len(results["bare"])
    base = statistics.median(w for w, _ in results["bare"])
    base_rss = statistics.median(m for _, m in results["bare"])
    print(f"one run as a whole process, median of {runs} (interleaved), beside a bare "
          "papermill run of a two-cell notebook:")
    for kind, figures in results.items():
        wall = statistics.median(w for w, _ in figures)
        rss = statistics.median(m for _, m in figures)
        extra = ""
        if kind == "ftkit run":
            extra = f"  goal ≤ {GOAL_RATIO}×: {'met' if wall / base <= GOAL_RATIO else 'NOT met'}"
        print(f"  {kind:10} {wall:6.2f} s  {wall / base:5.2f}×   peak memory "
              f"{rss / 2**20:5.0f} MiB  {rss / base_rss:4.2f}×{extra}")
    out = scratch / "runbook-out.ipynb"
    if out.is_file():
        nb = json.loads(out.read_text(encoding="utf-8"))
        total = nb["metadata"].get("papermill", {}).get("duration") or 0.0
        cells = [(c["metadata"].get("papermill", {}).get("duration") or 0.0,
                  "".join(c["source"]).strip().splitlines()[0][:60])
                 for c in nb["cells"] if c["cell_type"] == "code" and c["source"]]
        spent = sum(d for d, _ in cells)
        print(f"kernel profile of the last runbook run: cells {spent:.2f} s of "
              f"{total:.2f} s in papermill (the rest: kernel start and shutdown); slowest:")
        for duration, first_line in sorted(cells, reverse=True)[:6]:
            print(f"  {duration:6.3f} s  {first_line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="copy the reports to this folder")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="ftkit-bench-run-"))
    try:
        results = measure(args.runs, scratch)
        report(results, scratch)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for file in (scratch / "reports").glob("*-*.*"):
                shutil.copy2(file, args.keep / file.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
