"""The one check before a run: every runbook parameter typed and bounded, the files and
the system it names, the decisions and the session it would resume. Read-only.

::

    files = check_run(path, {"system": "sim://lab1", "mode": "auto", ...})  # ftkit run
    check_value("time_scale", float("inf"))     # ParameterError: not a finite number

``ftkit run`` calls :func:`check_run` before a kernel starts (and
:func:`ftkit.runner.run_runbook` its parameter checks); the runbooks' first cell calls
:func:`check_decisions` (through ``ftkit_widgets.check_mode``) and a ``sim://`` system is
created only with a scenario and time scale :func:`check_value` accepts. A refusal is one
line (:class:`~ftkit.errors.ParameterError`, exit 2 at the command line) and changes
nothing: no system file, no journal, no ledger row.

What each parameter may be (:data:`PARAMETERS`; docs/DESIGN.md, "One check before a run"):

- ``system``: a target ``SCHEME://…`` of a known scheme, at most :data:`MAX_TARGET`
  characters; ``sim://NAME`` as :func:`ftkit.sim.driver.system_path` says, and a
  ``host://`` site file a regular file of at most :data:`ftkit.tomlreader.MAX_BYTES`
  (read with the configurations' bounded reader).
- ``config``, ``packages``: files (one name, or a list of at most :data:`MAX_FILES`), found
  and loaded as the run would load them.
- ``mode``: ``interactive``, ``auto`` or ``plan``; ``decisions``: a mapping of the
  questions to their answers; ``handover``: True or False.
- ``soak_minutes``: a finite number from 0 to one week
  (:data:`ftkit.decisions.MAX_SOAK_MINUTES`); ``time_scale``: a finite number from 0 to
  :data:`MAX_TIME_SCALE` (0 runs instantly, 1 in real time).
- ``operator``, ``change_id``: names of at most :data:`MAX_NAME` characters; ``reason``:
  text of at most :data:`MAX_REASON`; none of them holds a control character, a line or
  paragraph separator, or a format character (the bidi marks that reorder a line).
- ``scenario``: a scenario's name (no path), one of ``ftkit sim scenarios``.
- ``window_start``, ``window_end``: empty, or ISO 8601 with an offset or a zone name
  (``2026-12-05T22:00 Europe/Berlin``), both or neither, the end after the start
  (:mod:`ftkit.window`); a run on a system that requires a window gives one.

:func:`visible` is how the command line prints a value that came from input or a file: its
unsafe characters escaped (``\\x1b``, ``\\u202e``), never raw. Only the standard library is
imported here at module level (``ftkit status`` imports :func:`visible`).
"""

from __future__ import annotations

import math
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftkit.errors import (
    ConfigError,
    DecisionError,
    FtkitError,
    PackageError,
    ParameterError,
    RanAlreadyError,
    TargetError,
)

if TYPE_CHECKING:
    from ftkit.config import UpgradeConfig
    from ftkit.decisions import DecisionProvider
    from ftkit.packages import UpdatePackage

__all__ = [
    "MAX_FILES",
    "MAX_NAME",
    "MAX_REASON",
    "MAX_TARGET",
    "MAX_TIME_SCALE",
    "MODES",
    "PARAMETERS",
    "check_decisions",
    "check_run",
    "check_text",
    "check_time_scale",
    "check_value",
    "unsafe",
    "visible",
]

#: The longest operator or change id (characters).
MAX_NAME = 200
#: The longest reason (characters): a sentence or a paragraph, on one line.
MAX_REASON = 2000
#: The longest target (characters): a path is at most PATH_MAX.
MAX_TARGET = 4096
#: The fastest simulated clock: 1000 simulated seconds a second (0 runs instantly).
MAX_TIME_SCALE = 1000.0
#: The most package files one run names.
MAX_FILES = 64
#: The run modes.
MODES = ("interactive", "auto", "plan")

# control (Cc), format (Cf: bidi marks, zero-width characters), surrogates (Cs), line and
# paragraph separators (Zl, Zp): each can clear a screen, fake a line or reorder it
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def unsafe(character: str) -> bool:
    """Whether CHARACTER must never reach a terminal or a record raw."""
    return unicodedata.category(character) in _UNSAFE_CATEGORIES


def visible(value: object) -> str:
    """``str(value)`` with every unsafe character escaped as Python writes it (``\\n``,
    ``\\x1b``, ``\\u202e``): what the command line prints of a value from input or a file.
    A value without one is returned unchanged."""
    text = str(value)
    if not any(unsafe(c) for c in text):
        return text
    return "".join(c.encode("unicode_escape").decode("ascii") if unsafe(c) else c
                   for c in text)


def check_text(name: str, value: object, *, limit: int = MAX_NAME,
               example: str = "") -> str:
    """VALUE as text for parameter NAME: a string of at most LIMIT characters without an
    unsafe character; otherwise a one-line ParameterError. Read-only."""
    fix = f"write -p {name} {example}" if example else f"write -p {name} as plain text"
    if not isinstance(value, str):
        raise ParameterError(f"{name} must be text, not {_kind(value)}", fix)
    if len(value) > limit:
        raise ParameterError(f"{name} is {len(value)} characters, more than {limit}", fix)
    bad = next((c for c in value if unsafe(c)), None)
    if bad is not None:
        raise ParameterError(
            f"{name} {visible(_clip(value))} holds the control or format character "
            f"{visible(bad)}", f"{fix}, on one line, without control characters or bidi marks")
    return value


def _clip(text: str, length: int = 60) -> str:
    return text if len(text) <= length else text[:length] + "…"


def _kind(value: object) -> str:
    return "None" if value is None else f"{type(value).__name__} {visible(_clip(repr(value)))}"


def _number(name: str, value: object, *, high: float, example: str) -> float:
    """VALUE as a finite float from 0 to HIGH; otherwise a one-line ParameterError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(f"{name} must be a number, not {_kind(value)}",
                             f"write -p {name} {example}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(f"{name} must be a finite number, not {value}",
                             f"write -p {name} {example} (0 to {high:g})")
    if not 0 <= value <= high:
        shown = f"{value:g}" if isinstance(value, float) else (
            str(value) if abs(value) < 10**12 else f"{'-' if value < 0 else ''}10^"
            f"{len(str(abs(value))) - 1}")
        raise ParameterError(f"{name} {shown} is not between 0 and {high:g}",
                             f"write -p {name} {example}")
    return float(value)


def _time_scale(value: object) -> float:
    return _number("time_scale", value, high=MAX_TIME_SCALE,
                   example="0 (instant) or 1 (real time)")


def check_time_scale(value: object, *, option: str = "time_scale") -> float:
    """VALUE as a simulated clock's time scale: a finite number from 0 (instant) to
    :data:`MAX_TIME_SCALE` (1 is real time); a one-line ParameterError naming OPTION
    otherwise. Read-only."""
    try:
        return _time_scale(value)
    except ParameterError as err:
        raise ParameterError(err.message.replace("time_scale", option, 1),
                             err.remedy.replace("-p time_scale", option)) from None


def _soak_minutes(value: object) -> float:
    from ftkit.decisions import MAX_SOAK_MINUTES

    return _number("soak_minutes", value, high=MAX_SOAK_MINUTES,
                   example="30 (the minutes to watch the merged system; 0 for none)")


def _name(example: str) -> Callable[[str, object], object]:
    def check(name: str, value: object) -> object:
        # an integer is a name too: -p change_id 1234 arrives as the int 1234
        shown = str(value) if isinstance(value, int) and not isinstance(value, bool) and (
            value.bit_length() < 1024) else value
        check_text(name, shown, limit=MAX_NAME, example=example)
        return value
    return check


def _reason(name: str, value: object) -> object:
    shown = str(value) if isinstance(value, int) and not isinstance(value, bool) and (
        value.bit_length() < 8192) else value
    check_text(name, shown, limit=MAX_REASON, example='"monthly patches"')
    return value


def _scenario(name: str, value: object) -> str:
    from ftkit.sim.twin import scenario_names

    text = check_text(name, value, limit=64, example="demo")
    known = scenario_names()
    if text not in known:
        why = (": a scenario is a name, not a path" if any(c in text for c in "/\\")
               or text.startswith(".") else "")
        raise ParameterError(f"unknown scenario {visible(text)!r}{why}",
                             f"use one of: {', '.join(known)} (see: ftkit sim scenarios)")
    return text


def _mode(name: str, value: object) -> str:
    if not isinstance(value, str) or value not in MODES:
        raise ParameterError(f"unknown mode {visible(_clip(repr(value)))}",
                             f"use mode {' | '.join(MODES)}")
    return value


def _decisions(name: str, value: object) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ParameterError(f"decisions must be a mapping, not {_kind(value)}",
                             "pass e.g. -p decisions \"{split: proceed, merge: proceed, "
                             "commit: commit}\"")
    return value  # each name and answer is checked by its provider (one of the choices)


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ParameterError(f"{name} {visible(_clip(repr(value)))} is not True or False",
                             f"write -p {name} True or -p {name} False")
    return value


def _file_name(name: str, value: object) -> str:
    text = check_text(name, os.fspath(value) if isinstance(value, os.PathLike) else value,
                      limit=MAX_TARGET, example="path/to/file.toml")
    if not text.strip():
        raise ParameterError(f"{name} is empty", f"write -p {name} path/to/file.toml")
    return text


def _files(name: str, value: object) -> list[str]:
    if isinstance(value, str | os.PathLike):
        return [_file_name(name, value)]
    if not isinstance(value, list | tuple):
        raise ParameterError(f"{name} must be a file or a list of files, not {_kind(value)}",
                             f"write -p {name} path.toml or -p {name} \"[a.toml, b.toml]\"")
    if len(value) > MAX_FILES:
        raise ParameterError(f"{name} names {len(value)} files, more than {MAX_FILES}",
                             "name the packages of one change")
    return [_file_name(name, item) for item in value]


def _system(name: str, value: object) -> str:
    """A target of a known scheme: a ``sim://`` name or path as the simulator takes it, a
    ``host://`` site file that is a regular file of bounded size. Read-only."""
    from ftkit.drivers import known_scheme, schemes, split_target

    text = check_text(name, value, limit=MAX_TARGET, example="sim://NAME")
    try:
        scheme, rest = split_target(text)
    except TargetError as err:
        raise ParameterError(err.message, f"write -p system sim://{visible(text)}"
                             if "://" not in text else err.remedy) from None
    if not known_scheme(scheme):
        raise ParameterError(f"no driver for scheme {scheme!r} in {text!r}",
                             f"use one of: {', '.join(s + '://' for s in schemes())}")
    if scheme == "sim":
        from ftkit.sim.driver import system_path

        _not_special(system_path(rest), text)
    elif scheme == "host":
        from ftkit.tomlreader import read_file

        read_file(rest, f"site file of {text}", TargetError,
                  missing="write one (see examples/host/site.toml) or correct the target")
    return text


def _not_special(path: Path, target: str) -> None:
    """Refuse a ``sim://`` twin path that exists and is not a regular file (a FIFO, a
    device, a folder): SQLite would block on it or read it forever. Read-only."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # not there yet: the run creates it, or says it is missing
    if not stat.S_ISREG(mode):
        raise ParameterError(f"{target}: {path} is not a regular file (a folder, pipe or "
                             "device)", "name a simulated system's .db file")


def _moment(name: str, value: object) -> object:
    """A change window's start or end: empty (none, or the configuration's), or ISO 8601
    with an offset or a zone name (ftkit/window.py)."""
    if value in ("", None):
        return value
    from ftkit.window import parse_time

    parse_time(check_text(name, value, limit=100, example="2026-12-05T22:00:00+01:00"),
               what=name)
    return value


def _scheduler(name: str, value: object) -> object:
    """A campaign's Dask scheduler: empty (a local cluster), or an address such as
    ``tcp://HOST:8786`` (docs/CAMPAIGNS.md)."""
    if value in ("", None):
        return value
    text = check_text(name, value, limit=MAX_TARGET, example="tcp://scheduler:8786")
    if not re.fullmatch(r"(tcp|tls|ws|wss|ucx|inproc)://[^\s/]+", text):
        raise ParameterError(f"{name} {visible(text)!r} is not a Dask scheduler address",
                             f"write -p {name} tcp://HOST:8786, or leave it empty for a "
                             "local cluster")
    return value


#: Every runbook parameter's check: ``(name, value) -> value``, raising ParameterError.
PARAMETERS: dict[str, Callable[[str, Any], Any]] = {
    "system": _system,
    "config": _file_name,
    "packages": _files,
    "mode": _mode,
    "decisions": _decisions,
    "soak_minutes": lambda _n, v: _soak_minutes(v),
    "change_id": _name("CHG-1234"),
    "operator": _name("YOUR-NAME"),
    "reason": _reason,
    "scenario": _scenario,
    "time_scale": lambda _n, v: _time_scale(v),
    "handover": _flag,
    "window_start": lambda n, v: _moment(n, v),
    "window_end": lambda n, v: _moment(n, v),
    "campaign": _file_name,
    "scheduler": _scheduler,
}


def check_value(name: str, value: Any) -> Any:
    """VALUE checked as runbook parameter NAME (:data:`PARAMETERS`); a parameter ftkit does
    not know must be text without unsafe characters, a number, a flag, None, or a list or
    mapping of those. Returns it; a one-line ParameterError otherwise. Read-only."""
    check = PARAMETERS.get(name)
    if check is not None:
        return check(name, value)
    _plain(name, value, depth=0)
    return value


def _plain(name: str, value: Any, *, depth: int) -> None:
    if depth > 8:
        raise ParameterError(f"{name} nests more than 8 deep", f"simplify -p {name}")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ParameterError(f"{name} must be a finite number, not {value}",
                                 f"write -p {name} as a number")
        return
    if isinstance(value, str):
        check_text(name, value, limit=MAX_REASON)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _plain(name, key, depth=depth + 1)
            _plain(name, item, depth=depth + 1)
        return
    if isinstance(value, list | tuple):
        for item in value:
            _plain(name, item, depth=depth + 1)
        return
    raise ParameterError(f"{name} cannot be {_kind(value)}", f"write -p {name} as text")


# --- decisions and who runs it ---------------------------------------------------------------


def check_decisions(mode: str, decisions: Mapping[str, Any] | None, *, operator: str,
                    reason: str, change_id: str | None = None, system: str | None = None,
                    path: bool = True, what: str = "this run") -> DecisionProvider | None:
    """Refuse a bad mode or answer, a bad operator, reason or change id, a run that can
    change a system without an operator or a change id (CHANGE_ID None: not asked), and
    ``auto`` decisions that stop short of an end or a declared pause (PATH; from where
    SYSTEM's unfinished session stands). Returns the mode's decision provider (None for
    interactive). Read-only: what ``ftkit run`` and the runbook's first cell both call."""
    from ftkit.decisions import check_identity, provider_for
    from ftkit.flow import check_path

    _mode("mode", mode)
    answers = _decisions("decisions", decisions)
    check_value("operator", operator)
    check_value("reason", reason)
    if change_id is not None:
        check_value("change_id", change_id)
    if system is not None:
        check_text("system", system, limit=MAX_TARGET, example="sim://NAME")
    provider = provider_for(mode, answers, operator=operator, reason=reason)
    if mode != "plan" and change_id is not None:  # who, and which change: facts, no defaults
        check_identity(operator=operator, change_id=change_id, what=what)
    if mode == "auto" and path:
        check_path({str(k): str(v) for k, v in answers.items()},
                   **(_standing(system) if system else {}))
    return provider


def _standing(system: str) -> dict[str, Any]:
    """Where SYSTEM's unfinished session stands, for :func:`ftkit.flow.check_path` (nothing
    for a new session). Read-only."""
    from ftkit.process import standing

    return standing(system)


# --- the whole run ----------------------------------------------------------------------------

#: Errors that already say the input was wrong (exit 2); any other FtkitError of the check
#: becomes a ParameterError, so that the command line exits 2 for every refusal here.
_BAD_INPUT = (ParameterError, TargetError, ConfigError, PackageError, DecisionError)


def check_run(path: Path, params: Mapping[str, Any], *, system: bool = True,
              clicks: bool = False
              ) -> tuple[UpgradeConfig | None, list[UpdatePackage] | None]:
    """Everything ``ftkit run`` checks before a kernel starts, for the runbook at PATH run
    with PARAMS (a parameter not given takes the runbook's default):

    parameters it does not declare; each value's type and bounds (:func:`check_value`);
    the ``config`` and ``packages`` files (found and loaded); mode, decisions, operator and
    change id, and interactive mode, which ``ftkit run`` cannot click; and with SYSTEM
    (what ``ftkit run`` asks; :func:`~ftkit.runner.run_runbook` leaves it to the run) the
    system (a ``sim://`` one must exist unless the run creates it) and the session it would
    resume (a handover without ``-p handover True``, a change that ran already, nothing to
    install). Read-only; returns the run's configuration and packages as loaded (None where
    not declared). A refusal is one ParameterError (or ConfigError, PackageError,
    DecisionError, TargetError) line. With CLICKS (``ftkit app``: a page people click in)
    interactive mode is accepted.
    """
    try:
        return _check_run(Path(path), params, reach=system, clicks=clicks)
    except _BAD_INPUT:
        raise
    except FtkitError as err:
        raise ParameterError(err.message, err.remedy) from None


def _check_run(path: Path, params: Mapping[str, Any], *, reach: bool, clicks: bool = False
               ) -> tuple[UpgradeConfig | None, list[UpdatePackage] | None]:
    from ftkit.runner import parameter_value, runbook_parameters

    declared = runbook_parameters(path)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        known = ", ".join(declared) if declared else "none (it has no cell tagged parameters)"
        raise ParameterError(
            f"runbook {path.stem} has no parameter {', '.join(visible(u) for u in unknown)}",
            f"its parameters are: {known}",
        )
    values = {name: parameter_value(params, declared, name) for name in declared}
    for name, value in values.items():
        values[name] = check_value(name, value)
    files = _load_files(values)
    _check_window(values, files[0])
    mode = values.get("mode")
    if mode == "interactive" and not clicks:
        raise ParameterError(
            f"runbook {path.stem} in interactive mode waits for clicks, and ftkit run has no "
            "browser to click in",
            "pass -p mode auto with -p decisions \"{split: proceed, merge: proceed, "
            "commit: commit}\", or -p mode plan; or open the runbook in JupyterLab")
    if mode is not None:
        check_decisions(mode, values.get("decisions"), operator="", reason="",
                        system=values.get("system"))
    # a run that can change the system (a readiness check names who and which change
    # only for its record: optional there)
    if mode != "plan" and "operator" in declared and path.stem != "readiness-check":
        from ftkit.decisions import check_identity

        # the abort keeps the session's own change id; every other run names its change
        needs_change = "change_id" in declared and path.stem != "abort"
        check_identity(operator=str(values["operator"] or ""),
                       change_id=str(values.get("change_id") or "") if needs_change else "-",
                       what=f"runbook {path.stem}")
    if reach:
        _check_system(path, values, declared)
        _check_session(values, declared, files)
    return files


def _check_window(values: Mapping[str, Any], config: UpgradeConfig | None) -> None:
    """The run's change window (its parameters in place of the configuration's): both
    ends or neither, the end after the start; and, for a run that can change the system,
    one where the configuration (or the driver: every one but sim://) requires it.
    Read-only; one ParameterError line."""
    if "window_start" not in values and "window_end" not in values:
        return
    from ftkit.window import Controls

    controls = (config.controls if config is not None else Controls()).with_window(
        str(values.get("window_start") or ""), str(values.get("window_end") or ""))
    window = controls.the_window()
    system = str(values.get("system") or "")
    if window is None and values.get("mode") != "plan" and system and controls.required(system):
        raise ParameterError(
            f"no change window: a run on {visible(system)} needs one",
            "give -p window_start … -p window_end … (ISO 8601 with an offset or a zone), "
            "or [window] start and end in the configuration (window = \"optional\" to "
            "run without)")


def _load_files(values: Mapping[str, Any]
                ) -> tuple[UpgradeConfig | None, list[UpdatePackage] | None]:
    """The ``config`` and ``packages`` a run would use, loaded (None where the runbook
    declares none): a name that finds no file, or a file that does not load (read with the
    bounded reader: regular files only), is refused here — a typo must not become a failed
    run in the ledger. Read-only."""
    from ftkit.runner import find_file

    config = packages = None
    if "config" in values:
        from ftkit.config import load_config

        config = load_config(find_file(values["config"], parameter="config"))
    if "packages" in values:
        from ftkit.packages import load_packages

        given = values["packages"]
        names = [given] if isinstance(given, str | os.PathLike) else list(given or [])
        packages = load_packages([find_file(name, parameter="packages") for name in names])
    if values.get("campaign"):  # the campaign runbook: every member's run, checked as one
        from ftkit.campaign import check_members, load_campaign

        check_members(load_campaign(find_file(values["campaign"], parameter="campaign")))
    return config, packages


def _check_system(runbook: Path, values: Mapping[str, Any],
                  declared: Mapping[str, Any]) -> None:
    """Refuse a ``sim://`` system that does not exist when the runbook would not create it
    (it declares no ``scenario``, or runs in plan mode, which changes nothing). The
    target's form and scheme were checked with the parameters. Read-only."""
    system = values.get("system")
    if system is None:
        return
    from ftkit.drivers import split_target

    scheme, rest = split_target(system)
    if scheme != "sim":
        return
    from ftkit.sim.driver import system_path

    mode = values.get("mode")
    creates = "scenario" in declared and mode != "plan"
    if not creates and not system_path(rest).is_file():
        why = "plan mode creates none" if mode == "plan" else (
            f"runbook {runbook.stem} creates none")
        raise ParameterError(f"no simulated system {system}, and {why}",
                             f"create it with: ftkit sim create {system}")


def _check_session(values: Mapping[str, Any], declared: Mapping[str, Any],
                   files: tuple[UpgradeConfig | None, list[UpdatePackage] | None]) -> None:
    """Refuse an upgrade run the session would refuse anyway: one that would resume the
    system's unfinished session under another change id or operator without ``-p handover
    True``, the rerun of a change that ended (a change runs once), one while another run
    drives the system, and one with nothing to install. The session refuses these too;
    here they cost no kernel and no second ledger row. Only for a runbook that declares
    ``handover`` and ``packages``, not in plan mode; a system that cannot be reached is
    left to the run to report. Read-only."""
    config, packages = files
    if config is None or packages is None or not {
            "handover", "system", "change_id", "operator"} <= set(declared):
        return
    if values.get("mode") == "plan":
        return
    from ftkit.drivers import connect
    from ftkit.journal import Journal
    from ftkit.process import handover_refusal, nothing_to_install

    target, change_id = str(values["system"]), str(values["change_id"])
    empty = nothing_to_install(None, config, packages)  # none given: no system needed
    if empty is not None:
        raise ParameterError(*empty)
    try:
        driver = connect(target)
    except FtkitError:
        return  # not there yet (created by the run) or not reachable from here
    try:
        journal = Journal.find(driver)
        sessions = []
        if journal is not None:
            with journal:
                record, sessions = journal.current_session(), journal.sessions()
                busy = journal.busy()  # another run drives it now: it would be refused
            if record is not None:
                if busy is not None:
                    raise ParameterError(busy.message, busy.remedy)
                if values["handover"] is True:
                    return
                refusal = handover_refusal(record, target, change_id=change_id,
                                           operator=str(values["operator"]))
                if refusal is not None:
                    raise ParameterError(refusal.message, refusal.remedy)
                return  # the unfinished session goes on
        ended = [s for s in sessions if s.change_id == change_id and s.ended]
        if ended:  # a change runs once: its rerun would only archive a second record
            raise RanAlreadyError(
                f"change {change_id} ran already on {target}: session {ended[-1].id} "
                f"ended {ended[-1].outcome} at {ended[-1].ended}; nothing is run again",
                "its record is in the archive (ftkit reports list); a new change needs a "
                "new change id")
        refusal_why = nothing_to_install(driver.status(), config, packages)
        if refusal_why is not None:
            raise ParameterError(*refusal_why)
    finally:
        driver.close()
