"""What every run of an upgrade must leave, however it was interrupted on the way: checks
that test files share (``from invariants import ended_right``). Read-only: they open the
system and its journal, read them and close them.

The same invariants as ``test_adversary.py``'s kill sweep (docs/DOMAIN.md#invariants,
docs/DESIGN.md "The journal's guarantees"), stated once for the sweeps that drive the
runbook through a kernel.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from ftkit.drivers import connect
from ftkit.journal import Journal


def original_software(target: str) -> dict[str, str]:
    """TARGET's software on its first system disk now (before an upgrade); read-only."""
    driver = connect(target)
    try:
        return dict(driver.status().boot_disk().members[0].software)
    finally:
        driver.close()


def ended_right(target: str, answers: Mapping[str, str], expected: str,
                original: Mapping[str, str]) -> None:
    """Assert that TARGET's upgrade ended right: one session, ended EXPECTED; its journal
    verifies; every intent has exactly one outcome; each step succeeded once and each
    custom action ran once; no transaction lost; duplex and not split; the same software
    on both system disks, ORIGINAL's versions (of the products it names) after an abort
    and not those after a commit; one outage for a
    commit after a merge, two for an abort after it, none without a merge. Read-only."""
    with Journal.open(target) as journal:
        journal.verify()
        sessions = journal.sessions()
        assert [s.outcome for s in sessions] == [expected], sessions  # one session
        intents = journal.entries(kinds=["intent"])
        outcomes = journal.entries(kinds=["outcome"])
        unmatched = [i.step for i in intents
                     if sum(o.intent_id == i.id for o in outcomes) != 1]
        assert not unmatched, f"intents without exactly one outcome: {unmatched}"
        succeeded = Counter(o.step for o in outcomes if o.ok)
        assert set(succeeded.values()) <= {1}, succeeded  # nothing done twice
        actions = Counter((e.detail["action"], e.detail["when"])
                          for e in journal.entries(kinds=["action"]) if e.detail.get("ok"))
        assert set(actions.values()) <= {1}, actions
    driver = connect(target)
    try:
        st = driver.status()
        assert driver.lost_transactions() == 0
        assert st.duplex and not st.split
        software = {enc: dict(m.software) for enc, m in st.boot_disk().members.items()}
        assert software[0] == software[1], software
        before = {name: software[0].get(name) for name in original}
        assert (before == dict(original)) == (expected != "committed"), software
        merged = answers.get("merge") == "proceed"
        outages = [o for o in driver.outages() if o.seconds is not None]
        assert len(outages) == ((1 if expected == "committed" else 2) if merged else 0), outages
    finally:
        driver.close()
