"""How ``Journal.verify`` scales with the sessions table under the hash chain (not a test).

Run from the repository root::

    python benchmarks/bench_journal.py

It writes a journal of 10,000 entries in 200 sessions (each: its beginning, 48 state
moves, its end, every write carrying its sessions row) and prints a full verification
(what ``open_session`` runs; median of 3) and an incremental one after one more entry
written by another connection (what ``Journal.check`` runs before a step when someone
else wrote; median of 20). Everything happens in a temporary folder, removed at the end.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ftkit.journal import Journal  # noqa: E402

GOAL_FULL_S = 2.0


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="ftkit-bench-journal-"))
    try:
        with Journal(folder / "j.db", target="sim://bench") as journal:
            for n in range(200):
                record = journal.begin_session(change_id=f"CHG-{n}", operator="op",
                                               reason="bench")
                for _ in range(48):
                    journal.set_state(record.id, upgrade_state="Split",
                                      operational_state="Busy", message="move")
                journal.end_session(record.id, outcome="committed")
            count = len(journal.entries())
            full = []
            for _ in range(3):
                started = time.perf_counter()
                journal.verify()
                full.append(time.perf_counter() - started)
            incremental = []
            for _ in range(20):
                with Journal(journal.path) as other:  # another writer: check() must read
                    other.log(None, "info", "tick")
                started = time.perf_counter()
                journal.check()
                incremental.append(time.perf_counter() - started)
        print(f"journal of {count} entries, 200 sessions: full verify "
              f"{statistics.median(full):.3f} s (goal < {GOAL_FULL_S} s), incremental "
              f"{statistics.median(incremental) * 1000:.2f} ms")
        return 0 if statistics.median(full) < GOAL_FULL_S else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
