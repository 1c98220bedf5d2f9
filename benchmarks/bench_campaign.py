"""A campaign on Dask beside the same systems run one after another (prints figures; not a
test).

Run from the repository root::

    python benchmarks/bench_campaign.py [--systems 20] [--growth 5,20,100]

- ``campaign``: ``ftkit campaign run`` of N new simulated systems (time scale 0), a canary
  then waves of 5, a whole wave at once (``concurrency = 5``: on this 2-core machine a
  LocalCluster of 2 worker processes of 3 threads), every member archived;
- ``sequential``: ``ftkit run active-upgrade`` of N other new systems, one after another;
  both measured in this one run, so their ratio is what counts (goal: at most 0.6);
- growth: the campaign's wall time for each size given, its cost per system, and the
  fixed and per-system parts of a line fitted to them (per system beside one run of its own).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
GOAL_RATIO = 0.6


def _campaign_file(folder: Path, systems: int, tag: str) -> Path:
    packages = json.dumps([str(EXAMPLES / "packages" / "os-hotfix.toml"),
                           str(EXAMPLES / "packages" / "orderdb-12.5.toml")])
    lines = [f'name = "bench-{tag}"', f'change_id = "BENCH-{tag}"', "waves = [1, 5]",
             "concurrency = 5", f"max_failures = {systems}", "[parameters]",
             f'config = "{EXAMPLES / "demo-config.toml"}"', f"packages = {packages}",
             'mode = "auto"',
             'decisions = { split = "proceed", merge = "proceed", commit = "commit" }',
             "soak_minutes = 1", 'operator = "bench"', 'reason = "bench"']
    for n in range(systems):
        lines += ["[[systems]]", f'name = "s{n:03d}"', f'target = "sim://b{tag}-{n:03d}"']
    path = folder / f"campaign-{tag}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} … exited {proc.returncode}: "
                         f"{proc.stderr.strip().splitlines()[-1:] or proc.stdout[-300:]}")
    return time.perf_counter() - started


def campaign(systems: int, folder: Path, env: dict[str, str]) -> float:
    tag = uuid.uuid4().hex[:6]
    return _run([sys.executable, "-m", "ftkit", "campaign", "run",
                 str(_campaign_file(folder, systems, tag))], env)


def sequential(systems: int, env: dict[str, str]) -> float:
    tag = uuid.uuid4().hex[:6]
    started = time.perf_counter()
    for n in range(systems):
        _run([sys.executable, "-m", "ftkit", "run", "active-upgrade",
              "-p", "system", f"sim://q{tag}-{n:03d}", "-p", "mode", "auto",
              "-p", "decisions", "{split: proceed, merge: proceed, commit: commit}",
              "-p", "soak_minutes", "1", "-p", "operator", "bench",
              "-p", "change_id", f"SEQ-{tag}-{n}"], env)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=20)
    parser.add_argument("--growth", default="5,20,100",
                        help="campaign sizes to time, comma-separated ('' for none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ftkit-bench-campaign-") as tmp:
        folder = Path(tmp)
        env = {**os.environ, "FTKIT_HOME": str(folder / "home"),
               "FTKIT_REPORTS": str(folder / "reports")}
        camp = campaign(args.systems, folder, env)
        seq = sequential(args.systems, env)
        ratio = camp / seq
        print(f"{args.systems} systems: campaign (2 workers, canary + waves of 5 at once) "
              f"{camp:.1f} s, "
              f"sequential ftkit run {seq:.1f} s: ratio {ratio:.2f} "
              f"({'meets' if ratio <= GOAL_RATIO else 'misses'} the goal of {GOAL_RATIO}); "
              f"one ftkit run {seq / args.systems:.2f} s", flush=True)
        walls = {args.systems: camp}
        for size in [int(s) for s in args.growth.split(",") if s.strip()]:
            if size not in walls:
                walls[size] = campaign(size, folder, env)
            print(f"campaign of {size:4d} systems: {walls[size]:7.1f} s, "
                  f"{walls[size] / size:.2f} s a system", flush=True)
        if len(walls) > 1:
            fixed, each = _line(walls)
            print(f"growth: about {fixed:.1f} s for the campaign itself (its runbook, the "
                  f"cluster, its record) + {each:.2f} s a system, against "
                  f"{seq / args.systems:.2f} s for one ftkit run: each system costs "
                  f"{each / (seq / args.systems):.2f} of a run of its own")
    return 0


def _line(walls: dict[int, float]) -> tuple[float, float]:
    """Least squares of wall time against systems: (the fixed part, the part per system)."""
    xs, ys = list(walls), list(walls.values())
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    each = (sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
            / sum((x - mx) ** 2 for x in xs))
    return my - each * mx, each


if __name__ == "__main__":
    sys.exit(main())
