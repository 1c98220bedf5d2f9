"""The kill sweep on the path users run: ``runbooks/active-upgrade.ipynb`` executed by
papermill, its kernel SIGKILLed right after the N-th journal write, for every N a whole run
makes (and one more: the run ends, then is run again); then the same runbook with the
same parameters (plus ``broken: retry``) must end the upgrade right (tests/invariants.py).

No test hook in ftkit: an IPython startup file (``$IPYTHONDIR/profile_default/startup``,
given to the kernel through its environment) wraps ``Journal._write``, the journal's one
write path, counts each transaction that committed a change, and SIGKILLs its own kernel
after the N-th (``FTKIT_KILL_AFTER_WRITE``); with ``FTKIT_KILL_COUNT_FILE`` it writes the
count so far to that file. The number of writes of a whole run is counted that way once per
source tree (pytest's cache, keyed by a hash of ftkit, the widgets, the runbook and the
example inputs), so the sweep follows the engine when it writes more or less. Every 10th
point (and the last) runs in ``make test``; the others are ``slow`` (CI runs them).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFIG, PACKAGES
from invariants import ended_right, original_software

from ftkit.archive import result_from_notebook
from ftkit.sim.driver import create_system

pytestmark = pytest.mark.notebook

REPO = Path(__file__).resolve().parents[1]
RUNBOOK = REPO / "runbooks" / "active-upgrade.ipynb"
COMMIT = {"split": "proceed", "merge": "proceed", "commit": "commit"}
ABORT_BEFORE = {"split": "proceed", "merge": "abort"}
ABORT_AFTER = {**COMMIT, "commit": "abort"}
#: (name, decisions, outcome) of each path the sweep kills
PATHS = [("commit", COMMIT, "committed"), ("abort-before-merge", ABORT_BEFORE, "aborted"),
         ("abort-after-merge", ABORT_AFTER, "aborted")]
QUICK_EVERY = 10  # points 1, 11, 21, … (and the one past the end) run in make test

KILLER = '''\
"""ftkit kill sweep (tests/test_kill_papermill.py): SIGKILL this kernel right after its
N-th committed journal write (FTKIT_KILL_AFTER_WRITE); count them (FTKIT_KILL_COUNT_FILE)."""
import os
import signal
import threading
from contextlib import contextmanager

from ftkit.journal import Journal

_AFTER = int(os.environ.get("FTKIT_KILL_AFTER_WRITE") or 0)
_COUNT = os.environ.get("FTKIT_KILL_COUNT_FILE", "")
_write_of_ftkit = Journal._write
_lock = threading.Lock()
_seen = [0]


@contextmanager
def _write(self, *args, **kwargs):
    with _write_of_ftkit(self, *args, **kwargs) as conn:
        before = conn.total_changes
        yield conn
    if conn.total_changes == before:  # nothing was written: not a journal write
        return
    with _lock:
        _seen[0] += 1
        if _COUNT:
            with open(_COUNT, "w") as out:
                out.write(str(_seen[0]))
        if _seen[0] == _AFTER:
            os.kill(os.getpid(), signal.SIGKILL)


Journal._write = _write
'''


@contextmanager
def _kernel_env(**env: str | None) -> Iterator[None]:
    """os.environ with ENV set (None: removed) while papermill starts its kernel."""
    saved = {name: os.environ.get(name) for name in env}
    try:
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _ipython_dir(folder: Path, *, killer: bool) -> str:
    """An IPYTHONDIR in FOLDER: with the killer as its only startup file, or empty."""
    startup = folder / ("ipython-kill" if killer else "ipython-clean") / "profile_default"
    (startup / "startup").mkdir(parents=True, exist_ok=True)
    if killer:
        (startup / "startup" / "00-kill.py").write_text(KILLER)
    return str(startup.parent)


def _parameters(system: str, answers: Mapping[str, str]) -> dict[str, Any]:
    return {"system": system, "config": str(CONFIG), "packages": [str(p) for p in PACKAGES],
            "mode": "auto", "decisions": dict(answers), "change_id": "CHG-KP",
            "operator": "op", "reason": "papermill kill sweep"}


def _execute(system: str, answers: Mapping[str, str], out: Path) -> Any:
    """Run the upgrade runbook through papermill in a kernel; the executed notebook."""
    import papermill

    return papermill.execute_notebook(
        str(RUNBOOK), str(out), parameters=_parameters(system, answers),
        kernel_name="python3", cwd=str(RUNBOOK.parent), progress_bar=False, log_output=False)


def _count_writes(answers: Mapping[str, str], folder: Path) -> int:
    """How many journal writes a whole run of ANSWERS makes, on a new system."""
    count = folder / f"count-{uuid.uuid4().hex[:6]}"
    with _kernel_env(IPYTHONDIR=_ipython_dir(folder, killer=True), FTKIT_KILL_AFTER_WRITE=None,
                     FTKIT_KILL_COUNT_FILE=str(count)):
        nb = _execute(f"sim://count-{uuid.uuid4().hex[:8]}", answers, folder / "count.ipynb")
    result = result_from_notebook(nb)
    assert result is not None and result["outcome"] in ("committed", "aborted"), result
    return int(count.read_text())


def _sources_key() -> str:
    """A hash of what decides the number of writes: ftkit, the widgets, the runbook, the
    example inputs and the killer."""
    digest = hashlib.sha256(KILLER.encode())
    files = [*sorted((REPO / "ftkit").rglob("*.py")), *sorted((REPO / "widgets").rglob("*.py")),
             RUNBOOK, CONFIG, *PACKAGES]
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _writes_of_whole_runs(config: pytest.Config) -> dict[str, int]:
    """Per path, the journal writes of a whole run: counted once per source tree (kept in
    pytest's cache), in a temporary $FTKIT_HOME."""
    key = _sources_key()
    cache = getattr(config, "cache", None)
    kept = cache.get("ftkit/kill-papermill-writes", None) if cache is not None else None
    if isinstance(kept, dict) and kept.get("key") == key:
        return dict(kept["writes"])
    with tempfile.TemporaryDirectory(prefix="ftkit-count-") as scratch, \
            _kernel_env(FTKIT_HOME=str(Path(scratch) / "home")):
        writes = {name: _count_writes(answers, Path(scratch)) for name, answers, _ in PATHS}
    if cache is not None:
        cache.set("ftkit/kill-papermill-writes", {"key": key, "writes": writes})
    return writes


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize the sweep with every point of every path: N = 1 … writes + 1."""
    if "point" not in metafunc.fixturenames:
        return
    writes = _writes_of_whole_runs(metafunc.config)
    metafunc.parametrize(("answers", "expected", "point", "writes"), [
        pytest.param(answers, expected, point, writes[name], id=f"{name}-{point}",
                     marks=() if point % QUICK_EVERY == 1 or point > writes[name]
                     else pytest.mark.slow)
        for name, answers, expected in PATHS for point in range(1, writes[name] + 2)])


@pytest.mark.slow  # three whole runs; the cache is keyed by the sources that decide the count
def test_the_sweep_counts_the_writes_of_this_tree(tmp_path: Path,
                                                  request: pytest.FixtureRequest) -> None:
    """The counts the sweep was parametrized with are those of a run now (a stale cache
    would leave writes unswept)."""
    swept = _writes_of_whole_runs(request.config)
    assert {name: _count_writes(answers, tmp_path) for name, answers, _ in PATHS} == swept
    assert all(n > 5 for n in swept.values()), swept  # the killer sees the journal's writes


def test_killed_after_any_journal_write_the_rerun_ends_right(
        tmp_path: Path, answers: dict[str, str], expected: str, point: int,
        writes: int) -> None:
    from nbclient.exceptions import DeadKernelError

    system = f"sim://kp-{uuid.uuid4().hex[:8]}"
    create_system(system).close()
    original = original_software(system)
    count = tmp_path / "count"
    with _kernel_env(IPYTHONDIR=_ipython_dir(tmp_path, killer=True),
                     FTKIT_KILL_AFTER_WRITE=str(point), FTKIT_KILL_COUNT_FILE=str(count)):
        if point <= writes:
            with pytest.raises(DeadKernelError):
                _execute(system, answers, tmp_path / "killed.ipynb")
        else:  # one past the end: the run ends, then is run again
            first = result_from_notebook(_execute(system, answers, tmp_path / "whole.ipynb"))
            assert first is not None and first["outcome"] == expected, first
    assert int(count.read_text()) == min(point, writes)  # killed right there, or ran whole
    with _kernel_env(IPYTHONDIR=_ipython_dir(tmp_path, killer=False),
                     FTKIT_KILL_AFTER_WRITE=None, FTKIT_KILL_COUNT_FILE=None):
        nb = _execute(system, {**answers, "broken": "retry"}, tmp_path / "rerun.ipynb")
    result = result_from_notebook(nb)
    assert result is not None and result["outcome"] == expected, result
    ended_right(system, answers, expected, original)
