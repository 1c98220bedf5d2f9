"""The ``ftkit`` argument parser: every subcommand, every option with its help.

``ftkit run --help`` ends with the runbooks and their parameters, read from the notebooks
when the help is printed (``json`` + ``ast``, no notebook machinery), so the help never
disagrees with the runbooks and no other command pays for reading them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ftkit.cli import commands
from ftkit.cli.codes import EXIT_BAD_INPUT

__all__ = ["build_parser"]

TARGET_HELP = ("the system: SCHEME://NAME, for example sim://lab1; a bare NAME means "
               "sim://NAME")
SIM_NAME_HELP = "the simulated system: a name (lab1), sim://NAME or sim:///absolute/path.db"
JSON_HELP = "print JSON instead of text (for scripts)"
REPORTS_HELP = "the report archive (default: $FTKIT_REPORTS, else ./reports)"


class _Parser(argparse.ArgumentParser):
    """argparse, with ``ftkit: …`` error lines (usage errors still exit 2) and an optional
    ``footer``: a function whose text ends the help, computed only when help is printed."""

    footer: Callable[[], str] | None = None

    def error(self, message: str) -> Any:  # argparse's signature is NoReturn
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"ftkit: {message}\n")

    def format_help(self) -> str:
        text = super().format_help()
        return f"{text}\n{self.footer()}\n" if self.footer is not None else text


def _runbooks() -> str:
    from ftkit.cli.render import runbooks_help
    from ftkit.runner import runbooks_folder

    return runbooks_help(runbooks_folder())


def build_parser() -> argparse.ArgumentParser:
    """The ``ftkit`` argument parser (every subcommand sets ``func``)."""
    from ftkit import __version__

    parser = _Parser(
        prog="ftkit",
        description="Active Upgrade runbooks for duplexed fault-tolerant servers, and a "
                    "simulated ft server (sim://) to rehearse them on.",
        epilog="A NAME or TARGET without SCHEME:// means sim://NAME. Exit status: 0 ok, "
               "1 a step, check, run or verification failed, 2 bad input (nothing changed). "
               "Try: ftkit sim create lab1; ftkit status lab1; ftkit run --help",
    )
    parser.add_argument("--version", action="version", version=f"ftkit {__version__}",
                        help="print ftkit's version and exit")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                        parser_class=_Parser)
    _sim_parsers(subcommands)

    p = subcommands.add_parser("status", help="state, inventory, transactions and outages; "
                               "changes nothing",
                               description="Where a system stands: its summary, the "
                               "unfinished session, modules, mirrors, sides, services, "
                               "transactions and outages. Read-only.")
    p.add_argument("target", metavar="TARGET", help=TARGET_HELP)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=commands.cmd_status)

    p = subcommands.add_parser("check", help="the readiness check (exit 1 if a check fails)",
                               description="Every prerequisite of Active Upgrade, pass/warn/"
                               "fail with the remedy. Read-only.")
    p.add_argument("target", metavar="TARGET", help=TARGET_HELP)
    p.add_argument("--config", required=True, metavar="FILE",
                   help="the upgrade configuration (TOML), e.g. examples/demo-config.toml")
    p.add_argument("--package", metavar="FILE", action="extend", nargs="+",
                   help="update package manifest(s) (TOML), e.g. "
                        "examples/packages/orderdb-12.5.toml")
    p.add_argument("--require-staged", action="store_true",
                   help="fail (not warn) for packages not staged on the system yet")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=commands.cmd_check)

    p = subcommands.add_parser(
        "run", help="run a runbook headless (papermill) and archive the executed notebook",
        description="Run a runbook headless through papermill, then archive the executed "
        "notebook, its HTML and a ledger line in the report archive. Parameters, their "
        "files and the system are checked before a kernel starts: bad input runs and "
        "archives nothing (exit 2). Interactive mode needs a browser: pass -p mode auto "
        "(with -p decisions) or -p mode plan.",
        epilog='Example: ftkit run active-upgrade -p system sim://lab1 -p mode auto '
               '-p decisions "{split: proceed, merge: proceed, commit: commit}" '
               '-p change_id CHG-1234 -p operator alice')
    p.footer = _runbooks
    p.add_argument("runbook", metavar="RUNBOOK",
                   help="a runbook's name (listed below) or the path of a notebook")
    p.add_argument("-p", "--parameter", dest="param", nargs=2, action="append",
                   metavar=("NAME", "VALUE"),
                   help="set parameter NAME (repeat for more); VALUE is read as papermill's "
                        "-p does (True, 3, 0.5 …), and {…} or […] as YAML, e.g. "
                        "-p decisions \"{split: proceed}\"")
    p.add_argument("--kernel", metavar="KERNEL",
                   help="the Jupyter kernel to run it in (default: the notebook's, python3)")
    p.add_argument("--reports", metavar="DIR", help=REPORTS_HELP)
    p.add_argument("--progress", action="store_true",
                   help="show papermill's cell-by-cell progress bar")
    p.add_argument("--witness", metavar="PATH", action="append",
                   help="also publish the archive's checkpoint to this folder (added to "
                        "$FTKIT_WITNESS; repeat for more)")
    p.set_defaults(func=commands.cmd_run)

    p = subcommands.add_parser(
        "app", help="serve a runbook as an operator app without code (Voilà)",
        description="Serve a runbook through Voilà on 127.0.0.1: the page runs it in a "
        "kernel of its own, shows its outputs and panels but no code; interactive mode "
        "(the default) is decided by clicking in the page. Parameters are checked as "
        "ftkit run checks them before anything is served (bad input: exit 2).",
        epilog="Example: ftkit app active-upgrade -p system sim://lab1 -p change_id CHG-1234 "
               "-p operator alice")
    p.footer = _runbooks
    p.add_argument("runbook", metavar="RUNBOOK",
                   help="a runbook's name (listed below) or the path of a notebook")
    p.add_argument("-p", "--parameter", dest="param", nargs=2, action="append",
                   metavar=("NAME", "VALUE"), help="set parameter NAME, as ftkit run -p does")
    p.add_argument("--port", type=int, default=8866, help="the port to serve on (8866)")
    p.add_argument("--browser", action="store_true", help="open a browser on the page")
    p.set_defaults(func=commands.cmd_app)

    p = subcommands.add_parser(
        "recover", help="adopt a system whose journal was lost (a new session in the state "
        "the system shows)",
        description="A system whose journal was lost gets a new session in the state it "
        "shows: Split, Merge, PrepareMerge (a merge part way), Commit or Abort (Broken at a "
        "request it is part way through, e.g. a commit's resync), so that the abort runbook, "
        "or the upgrade runbook, takes it to a correct end. Refused, changing nothing, when "
        "its journal has an unfinished session or it shows no upgrade under way (a healthy "
        "duplex Idle system).")
    p.add_argument("target", metavar="TARGET", help=TARGET_HELP)
    p.add_argument("--operator", required=True, help="who recovers it (journaled)")
    p.add_argument("--reason", required=True, help="why (journaled)")
    p.set_defaults(func=commands.cmd_recover)

    _campaign_parsers(subcommands)
    p = subcommands.add_parser(
        "approve", help="approve the Commit of a system's upgrade, as another account than "
        "the operator's", description="Journal this account's approval of the Commit of "
        "SYSTEM's unfinished session, with the evidence shown (soak probes, outage, "
        "transactions lost). The account is $JUPYTERHUB_USER, else the OS user; the "
        "operator's own account is refused, as is another change id or a session past the "
        "commit decision (nothing is written then). How many approvals Commit needs: "
        "[approvals] commit in the configuration.")
    p.add_argument("target", metavar="SYSTEM", help=TARGET_HELP)
    p.add_argument("--change", required=True, metavar="CHG",
                   help="the change id of the session (must match)")
    p.add_argument("--by", required=True, metavar="NAME", help="who approves (journaled)")
    p.add_argument("--reason", metavar="TEXT", help="why (journaled)")
    p.set_defaults(func=commands.cmd_approve)

    rep = subcommands.add_parser("reports", help="the report archive and its ledger",
                                 description="The executed notebooks, their HTML and the "
                                 "hash-chained ledger (reports/ledger.jsonl).")
    repc = rep.add_subparsers(dest="reports_command", metavar="REPORTSCOMMAND", required=True,
                              parser_class=_Parser)
    p = repc.add_parser("list", help="the ledger, one run a line")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.add_argument("--reports", metavar="DIR", help=REPORTS_HELP)
    p.set_defaults(func=commands.cmd_reports_list)
    p = repc.add_parser("verify", help="find edited, removed or reordered records (exit 1)")
    p.add_argument("--reports", metavar="DIR", help=REPORTS_HELP)
    p.add_argument("--incremental", action="store_true",
                   help="check only what was added since the last verified entry (a "
                        "checkpoint beside the ledger, itself checked); for a nightly job")
    p.add_argument("--checkpoint", metavar="FILE",
                   help="where the incremental checkpoint lives (default: beside the ledger)")
    p.add_argument("--public-key", metavar="PEM",
                   help="require every entry and checkpoint signed by this Ed25519 key "
                        "(default: $FTKIT_VERIFY_KEY, else the key pinned by the archive's "
                        "first checkpoint); detects a chain recomputed after an edit")
    p.add_argument("--witness", metavar="PATH", action="append",
                   help="a folder checkpoints were published to ($FTKIT_WITNESS); repeat "
                        "for more; proves entries present whose journals are gone")
    p.set_defaults(func=commands.cmd_reports_verify)
    p = repc.add_parser("add", help="archive a notebook executed by plain papermill, once, "
                                     "if its facts match the system's journal")
    p.add_argument("notebook", metavar="NOTEBOOK", help="the output notebook papermill wrote")
    p.add_argument("--runbook", metavar="NAME",
                   help="the runbook it ran (default: papermill's input notebook's name)")
    p.add_argument("-p", "--parameter", dest="param", nargs=2, action="append",
                   metavar=("NAME", "VALUE"),
                   help="check that the run used this parameter value (repeat for "
                        "more); never changes what is recorded: a differing value is "
                        "refused")
    p.add_argument("--reports", metavar="DIR", help=REPORTS_HELP)
    p.add_argument("--witness", metavar="PATH", action="append",
                   help="also publish the archive's checkpoint to this folder (added to "
                        "$FTKIT_WITNESS; repeat for more)")
    p.set_defaults(func=commands.cmd_reports_add)

    keys = subcommands.add_parser(
        "keys", help="the archive's Ed25519 signing key",
        description="The key every ledger entry, checkpoint and attestation is signed with "
        "(default $FTKIT_HOME/keys/archive-ed25519.pem, or $FTKIT_SIGNING_KEY), its "
        "fingerprint (SHA-256 of the raw public key) recorded in every checkpoint.")
    keysc = keys.add_subparsers(dest="keys_command", metavar="KEYSCOMMAND", required=True,
                                parser_class=_Parser)
    for name, text in (("init", "make the key (private key mode 0600) and its public key"),
                       ("show", "print the key's files, fingerprint and public key"),
                       ("rotate", "replace the key: a checkpoint signed by the old key and "
                        "the new one names the new one")):
        p = keysc.add_parser(name, help=text)
        p.add_argument("--key", metavar="PEM",
                       help="the private key file (default: $FTKIT_SIGNING_KEY, else "
                            "$FTKIT_HOME/keys/archive-ed25519.pem)")
        if name == "rotate":
            p.add_argument("--reports", metavar="DIR", help=REPORTS_HELP)
        p.set_defaults(func=commands.cmd_keys)
    return parser


def _campaign_parsers(subcommands: Any) -> None:
    """``ftkit campaign …``: run, approve, status."""
    camp = subcommands.add_parser(
        "campaign", help="many systems: a canary, then waves, on Dask",
        description="A campaign upgrades the systems its file lists, a canary first, then "
        "waves, each system's run a Dask task (a local cluster, or --scheduler), each leaving "
        "its own record; the campaign's record lists them. Run it again to go on after an "
        "interruption or an approval.")
    campc = camp.add_subparsers(dest="campaign_command", metavar="CAMPAIGNCOMMAND",
                                required=True, parser_class=_Parser)
    p = campc.add_parser("run", help="run (or go on with) the campaign, and archive its record")
    p.add_argument("campaign", metavar="CAMPAIGN", help="the campaign file (TOML)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="an existing Dask scheduler (tcp://HOST:8786); default: a local "
                        "cluster of `concurrency` workers")
    p.add_argument("--reports", metavar="DIR", help=REPORTS_HELP)
    p.set_defaults(func=commands.cmd_campaign_run)
    p = campc.add_parser("approve", help="approve the next wave (journaled with your account)")
    p.add_argument("campaign", metavar="CAMPAIGN", help="the campaign file (TOML)")
    p.add_argument("--wave", type=int, required=True, help="the wave (1 is the first after "
                   "the canary)")
    p.add_argument("--by", required=True, help="who approves (journaled beside the account)")
    p.add_argument("--reason", default="", help="why (journaled)")
    p.set_defaults(func=commands.cmd_campaign_approve)
    p = campc.add_parser("status", help="each system's wave, state, outcome, outage, record")
    p.add_argument("campaign", metavar="CAMPAIGN", help="the campaign file (TOML)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=commands.cmd_campaign_status)


def _sim_parsers(subcommands: Any) -> None:
    """``ftkit sim …``: create, list, scenarios, faults, fault, clear, repair, remove."""
    sim = subcommands.add_parser("sim", help="simulated ft servers (digital twins)",
                                 description="Simulated ft servers, kept under "
                                 "$FTKIT_HOME/systems, to rehearse upgrades and faults on.")
    simc = sim.add_subparsers(dest="sim_command", metavar="SIMCOMMAND", required=True,
                              parser_class=_Parser)
    p = simc.add_parser("create", help="create a simulated system from a scenario")
    p.add_argument("name", metavar="NAME", help=SIM_NAME_HELP)
    p.add_argument("--scenario", default="demo",
                   help="what the system starts as (default demo; see: ftkit sim scenarios)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the simulator's random choices (default 0): the same seed "
                        "replays the same run")
    p.add_argument("--time-scale", type=float, default=0.0, dest="time_scale", metavar="X",
                   help="simulated seconds per real second: 0 = instant (default), "
                        "1 = real time")
    p.set_defaults(func=commands.cmd_sim_create)
    p = simc.add_parser("list", help="the simulated systems under $FTKIT_HOME")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=commands.cmd_sim_list)
    p = simc.add_parser("scenarios", help="the scenarios a system can be created from")
    p.set_defaults(func=commands.cmd_sim_scenarios)
    p = simc.add_parser("faults", help="the fault catalogue")
    p.set_defaults(func=commands.cmd_sim_faults)
    p = simc.add_parser("fault", help="arm a fault (or make it happen now)")
    p.add_argument("name", metavar="NAME", help=SIM_NAME_HELP)
    p.add_argument("fault", metavar="FAULT", help="which fault (see: ftkit sim faults)")
    p.add_argument("--at", metavar="POINT",
                   help="the step it fires in, or 'now' (default: the fault's own)")
    p.add_argument("--side", metavar="SIDE",
                   help="production | upgrade | 0 | 1 (default: the fault's own)")
    p.add_argument("--target", metavar="WHICH", default="",
                   help="which module kind, disk, service, action or team it hits")
    p.add_argument("--times", type=int, default=1, metavar="N",
                   help="how many times it fires (default 1)")
    p.set_defaults(func=commands.cmd_sim_fault)
    p = simc.add_parser("clear", help="disarm armed faults (all, or one fault's)")
    p.add_argument("name", metavar="NAME", help=SIM_NAME_HELP)
    p.add_argument("fault", metavar="FAULT", nargs="?",
                   help="disarm only this fault (default: all)")
    p.set_defaults(func=commands.cmd_sim_clear)
    p = simc.add_parser("repair", help="replace broken modules and failed disks")
    p.add_argument("name", metavar="NAME", help=SIM_NAME_HELP)
    p.add_argument("what", metavar="WHAT", nargs="?", default="all",
                   help="'all' (default), a module id or a disk name")
    p.set_defaults(func=commands.cmd_sim_repair)
    p = simc.add_parser("remove", help="delete a simulated system")
    p.add_argument("name", metavar="NAME", help=SIM_NAME_HELP)
    p.add_argument("--force", action="store_true",
                   help="remove it even if it is not a readable twin (a damaged file)")
    p.set_defaults(func=commands.cmd_sim_remove)
