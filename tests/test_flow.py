"""The declared process (ftkit.flow): the doc is rendered from it, the faces derive from it,
and the status every face reads follows its schema in every state of a whole upgrade."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ftkit import flow
from ftkit.decisions import CHOICES, ParameterDecisions
from ftkit.model import PartnerState, Request, UpgradeState
from ftkit.process import open_session
from ftkit.status import schema, system_status, validate

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "examples" / "demo-config.toml"
PACKAGES = [REPO / "examples" / "packages" / "os-hotfix.toml",
            REPO / "examples" / "packages" / "orderdb-12.5.toml"]
COMMIT = {"split": "proceed", "merge": "proceed", "commit": "commit"}


def test_the_state_machine_doc_is_rendered_from_the_declaration() -> None:
    doc = (REPO / "docs" / "STATE-MACHINE.md").read_text()
    block = re.search(r"```mermaid\n(.*?)```", doc, re.S)
    assert block is not None and block.group(1) == flow.mermaid()
    assert doc == flow.state_machine_doc(), (
        "docs/STATE-MACHINE.md disagrees with ftkit/flow.py: regenerate it (see "
        "flow.state_machine_doc)")


def test_every_declared_name_is_known() -> None:
    import ftkit.engine  # noqa: F401  (registers the bodies and guards)

    for name, spec in flow.REQUESTS.items():
        assert isinstance(name, Request) and spec.name is name
        assert callable(spec.run)  # every declared request has its registered body
        assert all(flow._GUARDS.get(g) for g in spec.guards)
        assert spec.sources and all(isinstance(s, UpgradeState) for s in spec.sources)
    assert set(flow.ACTION_REQUESTS) <= set(Request)
    for name, decision in flow.DECISIONS.items():
        assert isinstance(name, flow.Question) and decision.name is name
        assert set(decision.answers.values()) <= set(flow.REQUESTS)
        assert all(r in flow.REQUESTS for r in decision.requires)
        assert CHOICES[decision.name] == decision.choices
    assert CHOICES["broken"] == tuple(flow.RECOVERY.answers)


@pytest.mark.parametrize(("answers", "path"), [
    (COMMIT, ["PrepareSplit", "ExecuteSplit", "Install", "PrepareMerge", "ExecuteMerge",
              "Commit", "Finish"]),
    ({"split": "stop"}, ["PrepareSplit", "Abort", "Finish"]),
    ({"split": "proceed", "merge": "abort"},
     ["PrepareSplit", "ExecuteSplit", "Install", "Abort", "Finish"]),
    ({**COMMIT, "commit": "abort"},
     ["PrepareSplit", "ExecuteSplit", "Install", "PrepareMerge", "ExecuteMerge", "Abort",
      "Finish"]),
    ({"split": "proceed"}, ["PrepareSplit", "ExecuteSplit", "Install"]),  # pauses at merge
])
def test_walking_the_table_gives_each_path(answers: dict[str, str], path: list[str]) -> None:
    facts = {"packages": [("p 1", 3.0)], "merge_outage_s": 40.0, "resync_min": 10.0}
    steps, _stop = flow.walk(answers, facts)
    assert [s["request"] for s in steps] == path
    outages = [s["outage"] for s in steps if s["outage"] != "none"]
    merged = "ExecuteMerge" in path
    assert len(outages) == (1 if merged and answers.get("commit") == "commit" else
                            2 if merged else 0)


def test_next_step_follows_decisions_and_states() -> None:
    def nxt(state: UpgradeState, answers: dict[str, str], ok: set[str] = frozenset(),
            **kw: object) -> flow.Next:
        args = {"started": True, "ended": False, "operational": "Ready", "broken_step": None}
        args.update(kw)
        return flow.next_step(state=state, answers=answers, succeeded=ok.__contains__,
                              **args)  # type: ignore[arg-type]

    assert nxt(UpgradeState.IDLE, {}, started=False) == flow.Next("request", "PrepareSplit")
    assert nxt(UpgradeState.PREPARE_SPLIT, {}) == flow.Next("decide", "split")
    assert nxt(UpgradeState.SPLIT, {"split": "proceed"}) == flow.Next("request", "Install")
    assert nxt(UpgradeState.SPLIT, {}, {"Install"}) == flow.Next("decide", "merge")
    assert nxt(UpgradeState.PREPARE_MERGE, {}) == flow.Next("request", "ExecuteMerge")
    assert nxt(UpgradeState.MERGE, {"commit": "abort"}) == flow.Next("request", "Abort")
    assert nxt(UpgradeState.ABORT, {}) == flow.Next("request", "Finish")
    assert nxt(UpgradeState.SPLIT, {}, broken_step="Install") == flow.Next("recover",
                                                                            "Install")
    assert nxt(UpgradeState.SPLIT, {}, operational="Busy") == flow.Next("busy")
    assert nxt(UpgradeState.IDLE, {}, ended=True) == flow.Next("done")


def test_status_follows_the_schema_in_every_state_of_an_upgrade(make_sim) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[str, str, str]] = []
    for answers, outcome in [(COMMIT, "committed"), ({**COMMIT, "commit": "abort"}, "aborted")]:
        sim = make_sim()
        session = open_session(sim, CONFIG, PACKAGES, change_id="CHG-S", operator="t",
                               reason="schema")

        def check(_entry: object = None, sim=sim) -> None:  # type: ignore[no-untyped-def]
            data = system_status(sim)
            validate(data)
            seen.append((data["upgrade_state"], data["operational_state"],
                         data["partner_state"]))

        session.subscribe(check)
        check()
        assert session.run(ParameterDecisions(answers), soak_minutes=5) == outcome
        final = system_status(sim)
        assert final["session"]["outcome"] == outcome
        assert final["transactions"]["lost"] == 0
        assert len(final["outages"]) == (1 if outcome == "committed" else 2)
        assert final["software"]["0"] == final["software"]["1"]
    assert {s for s, _o, _p in seen} == {s.value for s in UpgradeState}
    assert {o for _s, o, _p in seen} == {"Ready", "Busy"}


def test_status_schema_names_the_states_of_the_model() -> None:
    props = schema()["properties"]
    assert props["upgrade_state"]["enum"] == [s.value for s in UpgradeState]
    assert props["partner_state"]["enum"] == [s.value for s in PartnerState]
    assert list(schema()["required"][:8]) == ["schema", "system", "system_id", "model",
                                               "upgrade_state", "operational_state",
                                               "broken", "partner_state"]


def test_after_actions_see_the_state_the_request_led_to(sim, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "states.log"
    script = tmp_path / "record.sh"
    script.write_text("#!/bin/sh\necho \"$ACTIVE_UPGRADE_REQUEST $ACTIVE_UPGRADE_STATE "
                      f"$ACTIVE_UPGRADE_HW_SPLIT\" >> {log}\n")
    script.chmod(0o755)
    cfg_file = tmp_path / "cfg.toml"
    actions = "".join(f'''
[[custom_actions]]
name = "record-{when}-{request}"
path = "{script}"
request = "{request}"
when = "{when}"
side = "Production"
''' for request, when in [("ExecuteSplit", "before"), ("ExecuteSplit", "after"),
                           ("ExecuteMerge", "after")])
    cfg_file.write_text(f'description = "after actions"\ninclude = ["{CONFIG}"]\n' + actions)
    session = open_session(sim, cfg_file, PACKAGES, change_id="CHG-A", operator="t",
                           reason="actions")
    session.run(ParameterDecisions(COMMIT))
    lines = log.read_text().splitlines()
    assert "ExecuteSplit PrepareSplit No" in lines  # before: the state it starts from
    assert "ExecuteSplit Split Yes" in lines  # after: the state it led to
    assert "ExecuteMerge Merge Yes" in lines


def test_auto_decisions_must_reach_an_end_or_a_declared_pause() -> None:
    from ftkit.errors import DecisionError
    from ftkit_widgets import check_mode

    with pytest.raises(DecisionError, match="stop at Split with no 'merge' answer"):
        check_mode("auto", {"split": "proceed"}, operator="o", reason="r")
    assert flow.check_path(COMMIT).endswith("Commit → Finish")
    assert "paused before merge" in flow.check_path({"split": "proceed", "merge": "later"})
    assert flow.check_path({"split": "stop"}) == "PrepareSplit → Abort → Finish"


def test_merge_later_stops_at_split_on_purpose_and_a_later_run_merges(sim) -> None:  # type: ignore[no-untyped-def]
    session = open_session(sim, CONFIG, PACKAGES, change_id="CHG-P", operator="o",
                           reason="tonight")
    assert session.run(ParameterDecisions({"split": "proceed", "merge": "later"})) == "Split"
    assert (session.upgrade_state, session.operational_state.value) == (UpgradeState.SPLIT,
                                                                        "Ready")
    assert session.decision("merge") is None and sim.outages() == []
    assert any("paused before the merge decision" in e.message for e in session.entries())
    later = open_session(sim, CONFIG, PACKAGES, change_id="CHG-P", operator="o",
                         reason="next window")
    assert later.run(ParameterDecisions(COMMIT)) == "committed"


def test_an_upgrade_with_nothing_to_install_is_refused_before_the_split(sim) -> None:  # type: ignore[no-untyped-def]
    from ftkit.errors import TransitionError

    first = open_session(sim, CONFIG, PACKAGES, change_id="CHG-N1", operator="o", reason="r")
    assert first.run(ParameterDecisions(COMMIT)) == "committed"
    outages = len(sim.outages())
    again = open_session(sim, CONFIG, PACKAGES, change_id="CHG-N2", operator="o", reason="r")
    with pytest.raises(TransitionError, match="nothing to install"):
        again.run(ParameterDecisions(COMMIT))
    assert again.record is None and not sim.status().split and len(sim.outages()) == outages


def test_resuming_under_another_change_id_or_operator_is_an_explicit_handover(sim) -> None:  # type: ignore[no-untyped-def]
    from ftkit.errors import TransitionError

    first = open_session(sim, CONFIG, PACKAGES, change_id="CHG-1234", operator="alice",
                         reason="monthly")
    first.run(ParameterDecisions({"split": "proceed", "merge": "later"}))
    first.close()
    for change, operator in (("CHG-1235", "alice"), ("CHG-1234", "bob")):
        with pytest.raises(TransitionError, match="is a handover"):
            open_session(sim, CONFIG, PACKAGES, change_id=change, operator=operator)
    same = open_session(sim, CONFIG, PACKAGES, change_id="CHG-1234", operator="alice")
    assert not any("handover" in e.message for e in same.entries())  # refused: nothing
    same.close()
    taken = open_session(sim, CONFIG, PACKAGES, change_id="CHG-1235", operator="bob",
                         reason="window moved", handover=True)
    [note] = [e for e in taken.entries(kinds=["warning"]) if "handover" in e.message]
    assert "change CHG-1234 / alice → change CHG-1235 / bob" in note.message
    assert note.detail["handover"]["from"] == {"change_id": "CHG-1234", "operator": "alice"}
    assert taken.run(ParameterDecisions(COMMIT, operator="bob")) == "committed"
    assert taken.decision("merge").who == "bob"


def test_leads_to_says_what_each_answer_runs_up_to_the_next_decision() -> None:
    facts = {"packages": [("A 1.0", 12.0), ("B 2.0", 8.0)], "needs_reboot": True,
             "reboot_min": 4.5, "merge_outage_s": 60.0, "restart_outage_s": 60.0,
             "resync_min": 120.0, "upgrade_resync_min": 0.0}
    split = flow.leads_to("split", "proceed", facts)
    assert [r for r, _e in split] == ["ExecuteSplit", "Install", "Install", "Install"]
    assert sum(e.minutes for _r, e in split) == 1.0 + 12.0 + 8.0 + 4.5  # up to merge
    assert [r for r, _e in flow.leads_to("split", "stop", facts)] == ["Abort", "Finish"]
    merge = flow.leads_to("merge", "proceed", facts)
    assert [r for r, _e in merge] == ["PrepareMerge", "ExecuteMerge"]
    assert sum(e.outage_s for _r, e in merge) == 60.0
    abort = flow.leads_to("commit", "abort", {**facts, "merged": True})
    assert abort[0][1].outage_s == 60.0 and abort[0][1].minutes == 120.0
    assert [r for r, _e in flow.leads_to("commit", "commit", facts)] == ["Commit", "Finish"]
    assert flow.leads_to("merge", "later", facts) == []  # a pause runs nothing
