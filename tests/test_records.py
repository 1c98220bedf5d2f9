"""Change records an auditor accepts, through ``ftkit run`` as a user types it: who and
which change, refused before anything changes when missing; a handover only when asked
for, journaled with both; auto mode that plans its whole path; a no-op upgrade refused
before a kernel starts; and every archived page self-contained and named."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import DECISIONS

from ftkit.archive import read_ledger
from ftkit.cli import main
from ftkit.decisions import account
from ftkit.journal import Journal

pytestmark = pytest.mark.notebook

ALL = "{split: proceed, merge: proceed, commit: commit}"


def ftkit_run(capsys: pytest.CaptureFixture[str], *params: str) -> tuple[int, str, str]:
    argv = ["run", "active-upgrade", "-p", "mode", "auto"]
    for pair in zip(params[::2], params[1::2], strict=True):
        argv += ["-p", *pair]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ftkit: "), err
    return lines[0]


class Page(HTMLParser):
    """What an archived page would load, and its title."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.tags: set[str] = set()
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self._in_title = tag == "title"
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "xlink:href") and value and not (
                    value.startswith(("#", "data:"))):
                self.loads.append(f"<{tag} {name}={value}>")

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False if tag == "title" else self._in_title

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def page(path: Path) -> tuple[Page, str]:
    text = path.read_text(encoding="utf-8")
    parsed = Page()
    parsed.feed(text)
    return parsed, text


def test_identity_and_auto_paths_are_refused_before_a_kernel_starts(
        capsys: pytest.CaptureFixture[str], ftkit_dirs: SimpleNamespace) -> None:
    for missing in ("operator", "change_id"):
        given = {"system": "sim://rec", "decisions": ALL, "operator": "alice",
                 "change_id": "CHG-1", missing: ""}
        code, out, err = ftkit_run(capsys, *[x for kv in given.items() for x in kv])
        assert code == 2 and out == "" and f"no {missing} was given" in one_line(err)
    # the decisions must lead to an end (or a declared pause) before anything changes
    code, _, err = ftkit_run(capsys, "system", "sim://rec", "decisions", "{split: proceed}",
                             "operator", "alice", "change_id", "CHG-1")
    assert code == 2 and "no 'merge' answer" in one_line(err)
    # no package at all: the upgrade would only cost an outage
    code, _, err = ftkit_run(capsys, "system", "sim://rec", "decisions", ALL, "operator",
                             "alice", "change_id", "CHG-1", "packages", "[]")
    assert code == 2 and "no update package was given" in one_line(err)
    assert not ftkit_dirs.reports.exists() and not (ftkit_dirs.home / "systems").exists()


def test_a_paused_session_is_handed_over_only_when_asked_and_no_op_upgrades_are_refused(
        capsys: pytest.CaptureFixture[str], ftkit_dirs: SimpleNamespace) -> None:
    system = "sim://rec"
    code, out, _ = ftkit_run(capsys, "system", system, "change_id", "CHG-1", "operator",
                             "alice", "decisions", "{split: proceed, merge: later}")
    assert code == 0 and "paused on purpose in Split" in out
    assert "run again with merge: proceed or abort" in out

    with Journal.open(system) as journal:
        before = len(journal.entries())
    code, out, err = ftkit_run(capsys, "system", system, "change_id", "CHG-2", "operator",
                               "bob", "decisions", ALL)
    line = one_line(err)
    assert code == 2 and out == "" and "belongs to change CHG-1 run by alice" in line
    assert "-p handover True" in line
    with Journal.open(system) as journal:
        assert len(journal.entries()) == before  # refused: nothing journaled, no ledger row
    assert [e.outcome for e in read_ledger(ftkit_dirs.reports)] == ["paused"]

    # the paused session's split stands: a different split answer cannot end it
    code, _, err = ftkit_run(capsys, "system", system, "change_id", "CHG-1", "operator",
                             "alice", "decisions", "{split: stop}")
    assert code == 2 and "no 'merge' answer" in one_line(err)
    # the answers still open are enough to go on (the split was decided before the pause)
    code, out, _ = ftkit_run(capsys, "system", system, "change_id", "CHG-2", "operator", "bob",
                             "handover", "True", "decisions", "{merge: proceed, commit: commit}")
    assert code == 0 and "taken over from alice" in out
    with Journal.open(system) as journal:
        (session,) = journal.sessions()
        [note] = [e for e in journal.entries(session.id, kinds=["warning"])
                  if "handover" in e.message]
        whos = [e.detail["who"] for e in journal.entries(session.id, kinds=["decision"])]
    assert session.outcome == "committed"
    assert note.detail["handover"]["from"] == {"change_id": "CHG-1", "operator": "alice"}
    assert note.detail["handover"]["to"] == {"change_id": "CHG-2", "operator": "bob"}
    assert whos == ["alice", "bob", "bob"]  # split before the handover, merge and commit after
    paused, committed = read_ledger(ftkit_dirs.reports)
    assert (paused.change_id, paused.operator, paused.outcome) == ("CHG-1", "alice", "paused")
    assert (committed.change_id, committed.operator) == ("CHG-1", "bob")
    assert committed.account == paused.account == account()  # beside the claimed operator
    assert committed.outcome == "committed"
    header = page(ftkit_dirs.reports / str(committed.html))[1]
    assert "taken over as CHG-2" in header

    # a change runs once: its rerun runs nothing and says which entry holds its end (exit
    # 0, one entry per session end), with no second record of it
    code, out, err = ftkit_run(capsys, "system", system, "change_id", "CHG-1", "operator",
                               "bob", "decisions", ALL)
    assert code == 0 and err == "" and "change CHG-1 ran already" in out
    assert f"already archived as ledger entry seq 2 ({ftkit_dirs.reports / committed.html}: " \
           "committed); nothing added" in out
    assert len(read_ledger(ftkit_dirs.reports)) == 2

    # everything is installed now: another change with the same packages only costs an outage
    code, out, err = ftkit_run(capsys, "system", system, "change_id", "CHG-3", "operator",
                               "alice", "decisions", ALL)
    assert code == 2 and out == "" and "nothing to install" in one_line(err)
    assert len(read_ledger(ftkit_dirs.reports)) == 2
    with Journal.open(system) as journal:
        assert len(journal.sessions()) == 1


def test_every_archived_page_is_self_contained_named_and_without_empty_sections(
        capsys: pytest.CaptureFixture[str], ftkit_dirs: SimpleNamespace) -> None:
    system = "sim://pages"
    runs = [["run", "readiness-check", "-p", "system", system],
            ["run", "active-upgrade", "-p", "system", system, "-p", "mode", "plan"],
            ["run", "active-upgrade", "-p", "system", system, "-p", "mode", "auto",
             "-p", "decisions", "{" + ", ".join(f"{k}: {v}" for k, v in DECISIONS.items())
             + "}", "-p", "change_id", "CHG-P", "-p", "operator", "carol"],
            ["run", "status", "-p", "system", system]]
    for argv in runs:
        assert main(argv) == 0, capsys.readouterr()
    capsys.readouterr()
    entries = read_ledger(ftkit_dirs.reports)
    assert [e.outcome for e in entries] == ["checked", "planned", "committed", "checked"]
    for entry in entries:
        parsed, text = page(ftkit_dirs.reports / str(entry.html))
        assert parsed.loads == [], entry.runbook  # nothing from the network, or from disk
        assert not parsed.tags & {"script", "link", "iframe"}, entry.runbook
        assert system in parsed.title and entry.outcome in parsed.title
        shows_plan = "Plan (plan mode only)" in text
        assert shows_plan == (entry.outcome == "planned"), entry.outcome
        assert "14. Abort" not in text  # no section that did not apply
    assert "CHG-P" in page(ftkit_dirs.reports / str(entries[2].html))[0].title


def test_a_run_of_a_system_another_process_drives_is_refused_before_a_kernel_starts(
        capsys: pytest.CaptureFixture[str], ftkit_dirs: SimpleNamespace) -> None:
    import subprocess
    import sys

    system = "sim://busy"
    code, _, _ = ftkit_run(capsys, "system", system, "change_id", "CHG-B", "operator", "alice",
                           "decisions", "{split: proceed, merge: later}")
    assert code == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom ftkit.journal import Journal\n"
         "j = Journal.open(sys.argv[1]); j.claim('the other run'); print('held', flush=True)\n"
         "time.sleep(120)", system], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code, out, err = ftkit_run(capsys, "system", system, "change_id", "CHG-B",
                                   "operator", "alice", "decisions", ALL)
        assert code == 2 and out == "" and "is driven by the other run" in one_line(err)
        assert len(read_ledger(ftkit_dirs.reports)) == 1  # no failed record of the refusal
    finally:
        holder.kill()
        holder.communicate()


def test_failed_records_say_where_they_stopped_in_words_true_in_a_record(
        capsys: pytest.CaptureFixture[str], ftkit_dirs: SimpleNamespace) -> None:
    """A failed readiness check and an upgrade Broken at Install: each record says in which
    section the run stopped (no cell number), ends where the run ended (no code that never
    ran, no promise of a log or a result it does not hold), gives its way on without a
    panel to click, and shows no code but in its closed appendix."""
    from ftkit.sim.driver import create_system

    for name in ("sim://bad-check", "sim://bad-install"):
        create_system(name, scenario="demo", seed=0).close()
    assert main(["sim", "fault", "sim://bad-check", "module-fail", "--side", "1"]) == 0
    assert main(["sim", "fault", "sim://bad-install", "installer-fail"]) == 0
    assert main(["run", "readiness-check", "-p", "system", "sim://bad-check", "-p",
                 "change_id", "CHG-R", "-p", "operator", "alice"]) != 0
    code, _, _ = ftkit_run(capsys, "system", "sim://bad-install", "change_id", "CHG-I",
                           "operator", "alice", "decisions", ALL)
    assert code != 0
    capsys.readouterr()
    check, upgrade = read_ledger(ftkit_dirs.reports)
    assert (check.outcome, upgrade.outcome) == ("failed", "failed")
    for entry in (check, upgrade):
        text = page(ftkit_dirs.reports / str(entry.html))[1]
        assert "cell [" not in text and "panel below" not in text, entry.runbook
        assert "<pre class='in'>" in text.split("<details class='code'>", 1)[1]
        assert "<pre class='in'>" not in text.split("<details class='code'>", 1)[0]
    text = page(ftkit_dirs.reports / str(check.html))[1]
    assert "This run stopped with an error in “The checks”" in text
    assert "the timeline" not in text
    assert "<th>Change</th><td>CHG-R</td>" in text and "alice (account" in text
    assert "RunResult" not in text  # the result cell never ran: not even in the appendix
    text = page(ftkit_dirs.reports / str(upgrade.html))[1]
    assert "This run stopped with an error in “13. Result”" in text
    # no result, yet the summary names the session the run left Broken, from its journal
    assert "<th>Session</th><td>1, started" in text and "(not ended yet)" in text
    assert "<th>Outage</th><td>none measured in the journal</td>" in text  # before merge
    assert "run this runbook again in auto mode with <code>broken: retry</code>" in text
    assert "<li><b>Abort</b> — run <code>runbooks/abort.ipynb</code>" in text
