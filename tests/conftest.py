"""Fixtures shared by every test.

- ``ftkit_dirs`` (autouse): ``$FTKIT_HOME`` and ``$FTKIT_REPORTS`` point into the test's
  own temporary folder, so no test reads or writes the user's twins, journals or reports.
- ``sim``: a fresh demo twin ``sim://t-<uuid>`` (time scale 0), closed afterwards.
- ``make_sim``: the same for any scenario, seed or time scale.

And the constants the test files share (import them: ``from conftest import CONFIG``):
the example configuration and update packages, the demo twin's software before and after
the upgrade, and the decisions of an upgrade that commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from ftkit.process import Session
from ftkit.sim.driver import SimDriver, create_system

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
#: The example upgrade configuration of the demo twin.
CONFIG = EXAMPLES / "demo-config.toml"
#: The two supported example update packages, in the order they are installed.
PACKAGES = [EXAMPLES / "packages" / "os-hotfix.toml", EXAMPLES / "packages" / "orderdb-12.5.toml"]
#: A package Active Upgrade may not install (firmware).
UNSUPPORTED_PACKAGE = EXAMPLES / "packages" / "unsupported" / "bios-update.toml"
#: The demo twin's software on its system disks before the upgrade, and after it.
ORIGINAL = {"OrderDB": "12.4.1", "Windows Server 2022": "10.0.20348.2700"}
UPGRADED = {"OrderDB": "12.5.0", "Windows Server 2022": "10.0.20348.2762"}
#: The decisions of an upgrade that goes all the way to commit.
DECISIONS = {"split": "proceed", "merge": "proceed", "commit": "commit"}


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


@pytest.fixture
def session(sim: SimDriver) -> Iterator[Session]:
    """A new session of ``sim`` (the demo packages, change CHG-T by tester)."""
    from ftkit.process import open_session

    s = open_session(sim, CONFIG, PACKAGES, change_id="CHG-T", operator="tester",
                     reason="test")
    yield s
    s.journal.close()
