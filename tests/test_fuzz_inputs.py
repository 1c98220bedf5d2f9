"""Hostile and random input (issue 8): configurations, package manifests, decisions, soak.

Every input either loads or is refused with one line of :class:`~ftkit.errors.FtkitError`
(never another exception, never a hang). The reproductions of the issue come first; then
hypothesis generates inputs, near-valid ones (a valid document with keys and values
swapped for odd ones) and raw text. The ``slow`` variants run many more examples.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftkit.config import REQUESTS, SIDES, WHEN, UpgradeConfig, load_config, load_config_text
from ftkit.decisions import (
    CHOICES,
    MAX_SOAK_MINUTES,
    ParameterDecisions,
    check_soak_minutes,
    parse_decisions,
)
from ftkit.errors import ConfigError, DecisionError, FtkitError, PackageError
from ftkit.packages import KINDS, UpdatePackage, load_package, load_package_text

# --- decisions (issue 8, reproductions 7 and 11) ----------------------------------------------


def test_decisions_text_reads_a_flow_mapping_or_json() -> None:
    assert parse_decisions("{split: proceed, merge: proceed, commit: commit}") == {
        "split": "proceed",
        "merge": "proceed",
        "commit": "commit",
    }
    assert parse_decisions('{"broken": "retry"}') == {"broken": "retry"}
    assert parse_decisions("") == {}


def test_a_decision_given_twice_is_refused() -> None:
    with pytest.raises(DecisionError) as info:
        parse_decisions("{split: proceed, split: stop}")
    assert info.value.message == "decision 'split' is given twice"


def test_a_yaml_boolean_is_named_as_typed_with_the_choices() -> None:
    with pytest.raises(DecisionError) as info:
        parse_decisions("{split: yes}")
    assert "'yes'" in info.value.message
    assert info.value.remedy == "answer one of: proceed | stop"
    with pytest.raises(DecisionError, match=r"cannot be 'True'.*answer one of: proceed \| stop"):
        ParameterDecisions({"split": True})  # type: ignore[dict-item]


ALIAS_BOMB = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
)


def test_a_yaml_alias_bomb_is_refused_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(DecisionError) as info:
        parse_decisions(ALIAS_BOMB)
    assert time.monotonic() - started < 1
    assert "anchors or aliases" in info.value.message


@pytest.mark.parametrize(
    "text",
    ["{split: [proceed]}", "[split, proceed]", "{split: proceed", "x" * 2000, "[" * 900],
    ids=["list-answer", "list", "unclosed", "too-long", "too-deep"],
)
def test_odd_decisions_text_is_one_line(text: str) -> None:
    with pytest.raises(DecisionError) as info:
        parse_decisions(text)
    assert "\n" not in str(info.value) and info.value.remedy


@pytest.mark.parametrize("minutes", [-5, -0.0001, 1e308, math.nan, math.inf, 10081, True, "30"])
def test_soak_minutes_out_of_bounds_are_refused(minutes: object) -> None:
    with pytest.raises(DecisionError) as info:
        check_soak_minutes(minutes)
    assert "soak_minutes" in info.value.message and "\n" not in str(info.value)


@pytest.mark.parametrize("minutes", [0, 0.5, 30, MAX_SOAK_MINUTES])
def test_soak_minutes_within_a_week_pass(minutes: float) -> None:
    assert check_soak_minutes(minutes) == minutes


# --- generated input ------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    """``value`` written as TOML (inline tables for dicts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int | str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _toml(document: dict[str, Any]) -> str:
    """A TOML document: scalars first, then [tables] and [[arrays of tables]]."""
    lines: list[str] = []
    tables: list[str] = []
    for key, value in document.items():
        name = json.dumps(key)
        if isinstance(value, dict):
            tables.append(f"[{name}]")
            tables += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                tables.append(f"[[{name}]]")
                tables += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in item.items()]
        else:
            lines.append(f"{name} = {_toml_value(value)}")
    return "\n".join(lines + tables) + "\n"


ODD_TEXT = st.text(max_size=12) | st.sampled_from(
    ["", " ", "\n", "..", "../..", "/dev/zero", "a\x00b", "${X}", "--password", "nan", "é"]
)
SCALARS = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | ODD_TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_TEXT, inner, max_size=3),
    max_leaves=6,
)


def _near(valid: dict[str, Any], keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """``valid`` with some keys replaced by odd values, dropped, or joined by odd keys."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        document = dict(valid)
        for key in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)):
            if draw(st.booleans()):
                document[key] = draw(VALUES)
            else:
                document.pop(key, None)
        document.update(draw(st.dictionaries(ODD_TEXT, VALUES, max_size=2)))
        return document

    return build()


ACTION = {
    "name": "quiesce",
    "path": "actions/quiesce.sh",
    "when": "before",
    "request": "ExecuteMerge",
}
ACTION_VALUES = (
    st.sampled_from([*REQUESTS, *SIDES, *WHEN, "Finish"])
    | st.floats(min_value=-1, max_value=1e6)
    | st.lists(ODD_TEXT | st.sampled_from(["--password", "token=x", "DB_PASSWORD", "PATH"]),
               max_size=3)
)


@st.composite
def configurations(draw: st.DrawFn) -> str:
    action = dict(ACTION)
    for key in draw(st.lists(st.sampled_from(
            ["name", "path", "when", "request", "side", "timeout_s", "args", "env",
             "secret_env", "token"]), max_size=3, unique=True)):
        action[key] = draw(ACTION_VALUES | VALUES)
    valid: dict[str, Any] = {
        "description": "fuzz",
        "critical_services": ["OrderDB"],
        "disks": {"system": ["system0"], "data": ["data0"]},
        "network": {"upgrade_ip": "192.0.2.50", "team": "team0"},
        "remote": {"user": "admin", "password_env": "PW"},
        "custom_actions": [action],
    }
    document = draw(_near(valid, [*valid, "include", "event_logs"]))
    return _toml(document)


@st.composite
def manifests(draw: st.DrawFn) -> str:
    installer: dict[str, Any] = {"command": "setup.exe /quiet", "touches": ["system"]}
    for key in draw(st.lists(st.sampled_from(
            ["command", "needs_network", "writes_data_disks", "creates_databases", "touches",
             "timeout_min"]), max_size=2, unique=True)):
        installer[key] = draw(VALUES | st.floats(min_value=-1, max_value=1e6))
    valid: dict[str, Any] = {
        "name": "OrderDB",
        "version": "12.5.0",
        "kind": draw(st.sampled_from(KINDS)),
        "needs_reboot": False,
        "duration_min": draw(st.floats(min_value=-1, max_value=3000) | st.integers(-5, 3000)),
        "installer": installer,
    }
    return _toml(draw(_near(valid, list(valid))))


DECISION_WORDS = st.sampled_from(
    [*CHOICES, *(a for answers in CHOICES.values() for a in answers), "yes", "no", "on", "~",
     "null", "&a", "*a", "!!python/object:os.system", "<<", "? ", "'", '"', "#", "-", ""]
)


@st.composite
def decisions_texts(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(st.text(max_size=40))
    pairs = draw(st.lists(st.tuples(DECISION_WORDS, DECISION_WORDS | st.text(max_size=5)),
                          max_size=5))
    body = ", ".join(f"{k}: {v}" for k, v in pairs)
    return draw(st.sampled_from(["{%s}", "%s", "[%s]", "{%s"])) % body


def _loads_or_one_line(load: Callable[[], object], refused: type[FtkitError]) -> object:
    try:
        return load()
    except FtkitError as err:
        assert isinstance(err, refused), f"{type(err).__name__}: {err}"
        assert "\n" not in str(err) and "\r" not in str(err), f"not one line: {err!r}"
        assert err.message and err.remedy, f"no message or remedy: {err!r}"
        return err


FAST = settings(max_examples=60, deadline=2000,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
SLOW = settings(max_examples=500, deadline=5000,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def _check_configuration(text: str, base: Path) -> None:
    loaded = _loads_or_one_line(lambda: load_config_text(text, base_dir=base), ConfigError)
    assert isinstance(loaded, UpgradeConfig | ConfigError)
    if isinstance(loaded, UpgradeConfig):
        assert all(0 < a.timeout_s <= 86400 for a in loaded.custom_actions)
        json.dumps(loaded.to_dict())


def _check_manifest(text: str, directory: Path) -> None:
    path = directory / "pkg.toml"
    path.write_text(text, encoding="utf-8")
    for load in (lambda: load_package_text(text), lambda: load_package(path)):
        loaded = _loads_or_one_line(load, PackageError)
        if isinstance(loaded, UpdatePackage):
            assert 0 < loaded.duration_min <= 1440 and 0 < loaded.timeout_min <= 4320


def _check_decisions(text: str) -> None:
    loaded = _loads_or_one_line(lambda: parse_decisions(text), DecisionError)
    if isinstance(loaded, dict):
        for name, answer in loaded.items():
            assert answer in CHOICES[name]


@FAST
@given(text=configurations())
def test_generated_configurations_load_or_are_refused_in_one_line(
    text: str, tmp_path: Path
) -> None:
    _check_configuration(text, tmp_path)


@FAST
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_raw_text_as_configuration_is_refused_in_one_line(text: str, tmp_path: Path) -> None:
    _check_configuration(text, tmp_path)
    path = tmp_path / "raw.toml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    _loads_or_one_line(lambda: load_config(path), ConfigError)


@FAST
@given(text=manifests())
def test_generated_manifests_load_or_are_refused_in_one_line(text: str, tmp_path: Path) -> None:
    _check_manifest(text, tmp_path)


@FAST
@given(text=decisions_texts())
def test_generated_decisions_parse_or_are_refused_in_one_line(text: str) -> None:
    _check_decisions(text)


@pytest.mark.slow
@SLOW
@given(text=configurations())
def test_many_generated_configurations(text: str, tmp_path: Path) -> None:
    _check_configuration(text, tmp_path)


@pytest.mark.slow
@SLOW
@given(text=manifests())
def test_many_generated_manifests(text: str, tmp_path: Path) -> None:
    _check_manifest(text, tmp_path)


@pytest.mark.slow
@SLOW
@given(text=decisions_texts())
def test_many_generated_decisions(text: str) -> None:
    _check_decisions(text)


# --- targets --------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_TARGETS = st.one_of(
    st.text(max_size=40),
    st.builds(lambda s, r: f"{s}://{r}", st.sampled_from(["sim", "SIM", "host", "nosuch", ""]),
              st.text(max_size=40)),
    st.sampled_from(["sim://../../etc/x", "SIM://v1", "sim://a\\nb", "sim:///no/such/twin.db",
                     "sim://a/b", "sim://" + "x" * 300, "sim://\\x00", "host:///nonexistent.toml"]),
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=_TARGETS)
def test_any_target_either_works_or_is_refused_in_one_line_changing_nothing(
        target: str, ftkit_dirs: object) -> None:
    """#11: malformed targets are refused with one line, and nothing is created."""
    import os

    from ftkit.cli import main

    home = ftkit_dirs.home
    before = sorted(str(p) for p in home.rglob("*")) if home.exists() else []
    code = main(["status", target])
    assert code in (0, 2)
    after = sorted(str(p) for p in home.rglob("*")) if home.exists() else []
    assert after == before, f"status {target!r} changed {set(after) - set(before)}"
    assert not os.path.exists("/etc/x")
