"""Fixtures shared by every test.

- ``ftkit_dirs`` (autouse): ``$FTKIT_HOME`` and ``$FTKIT_REPORTS`` point into the test's
  own temporary folder, so no test reads or writes the user's twins, journals or reports.
- ``sim``: a fresh demo twin ``sim://t-<uuid>`` (time scale 0), closed afterwards.
- ``make_sim``: the same for any scenario, seed or time scale.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from ftkit.sim.driver import SimDriver, create_system

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def ftkit_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """``$FTKIT_HOME`` = ``tmp_path/ftkit-home``, ``$FTKIT_REPORTS`` = ``tmp_path/reports``."""
    home = tmp_path / "ftkit-home"
    reports = tmp_path / "reports"
    monkeypatch.setenv("FTKIT_HOME", str(home))
    monkeypatch.setenv("FTKIT_REPORTS", str(reports))
    return SimpleNamespace(home=home, reports=reports)


@pytest.fixture
def make_sim() -> Iterator[Callable[..., SimDriver]]:
    """``make_sim(scenario="demo", seed=0, time_scale=0.0)`` → a new twin, closed at the end."""
    made: list[SimDriver] = []

    def make(scenario: str = "demo", *, seed: int = 0, time_scale: float = 0.0) -> SimDriver:
        driver = create_system(f"sim://t-{uuid.uuid4().hex[:12]}", scenario=scenario,
                               seed=seed, time_scale=time_scale)
        made.append(driver)
        return driver

    yield make
    for driver in made:
        driver.close()


@pytest.fixture
def sim(make_sim: Callable[..., SimDriver]) -> SimDriver:
    """A fresh demo twin at simulated time 0, duplex, applications running."""
    return make_sim()
