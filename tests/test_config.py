"""Upgrade configuration (the format: ftkit/config.py): loading, includes, validation, examples."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ftkit.config import (
    MAX_INCLUDE_DEPTH,
    MAX_INCLUDES,
    MAX_TIMEOUT_S,
    REQUESTS,
    CustomAction,
    UpgradeConfig,
    load_config,
    load_config_text,
)
from ftkit.errors import ConfigError, FtkitError
from ftkit.flow import ACTION_REQUESTS
from ftkit.redact import MASK, forget_secrets, scrub

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

MINIMAL = """
description = "test"
[disks]
system = ["system0"]
data = ["data0"]
"""

ACTION = """
[[custom_actions]]
name = "quiesce"
path = "actions/quiesce.sh"
when = "before"
request = "ExecuteMerge"
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def config_error(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, "upgrade.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert "\n" not in str(err), "an error is one line"
    assert str(path) in err.message, "an error names the file"
    assert err.remedy, "an error says what to do"
    return err


# --- a good configuration ----------------------------------------------------------------


def test_minimal_config_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "upgrade.toml", MINIMAL))
    assert config.system_disks == ("system0",)
    assert config.data_disks == ("data0",)
    assert config.critical_services == ()
    assert config.upgrade_ip is None
    assert config.custom_actions == ()
    assert config.source == (tmp_path / "upgrade.toml").resolve()
    assert config.includes == ()


def test_full_config_values_and_types(tmp_path: Path) -> None:
    text = """
description = "full"
critical_services = ["OrderDB", "WebFront", "OrderDB"]
event_logs = ["Application"]
[disks]
system = ["system0"]
data = ["data0", "ext0"]
[network]
upgrade_ip = "192.0.2.50"
team = "team0"
[remote]
user = "upgrade-admin"
password_env = "FTKIT_UPGRADE_PASSWORD"
[[custom_actions]]
name = "smoke"
path = "/opt/smoke.sh"
when = "after"
request = "ExecuteMerge"
side = "Both"
timeout_s = 30
args = ["--quick"]
"""
    config = load_config(write(tmp_path, "upgrade.toml", text))
    assert config.critical_services == ("OrderDB", "WebFront")  # duplicates dropped
    assert config.upgrade_ip == ipaddress.ip_address("192.0.2.50")
    assert config.team == "team0"
    assert config.remote_user == "upgrade-admin"
    assert config.password_env == "FTKIT_UPGRADE_PASSWORD"
    (action,) = config.custom_actions
    assert action == CustomAction(
        name="smoke",
        path=Path("/opt/smoke.sh"),
        when="after",
        request="ExecuteMerge",
        side="Both",
        timeout_s=30.0,
        args=("--quick",),
    )
    assert action.runs_on("Production") and action.runs_on("Upgrade")


def test_action_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "upgrade.toml", MINIMAL + ACTION))
    (action,) = config.custom_actions
    assert action.side == "Production"
    assert action.timeout_s == 300
    assert action.args == ()
    assert action.runs_on("Production") and not action.runs_on("Upgrade")


def test_ipv6_upgrade_ip(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "c.toml", MINIMAL + '[network]\nupgrade_ip = "2001:db8::50"\n')
    )
    assert config.upgrade_ip == ipaddress.ip_address("2001:db8::50")


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "upgrade.toml", MINIMAL + ACTION))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.description = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.custom_actions[0].timeout_s = 1  # type: ignore[misc]
    assert hash(config) == hash(load_config(tmp_path / "upgrade.toml"))


def names(actions: tuple[CustomAction, ...]) -> list[str]:
    return [action.name for action in actions]


def test_actions_for_filters_by_request_when_and_side(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + """
[[custom_actions]]
name = "a"
path = "a.sh"
when = "before"
request = "ExecuteMerge"
[[custom_actions]]
name = "b"
path = "b.sh"
when = "before"
request = "ExecuteMerge"
side = "Both"
[[custom_actions]]
name = "c"
path = "c.sh"
when = "after"
request = "ExecuteMerge"
side = "Upgrade"
"""
    )
    config = load_config(write(tmp_path, "c.toml", text))
    assert names(config.actions_for("ExecuteMerge", "before", "Production")) == ["a", "b"]
    assert names(config.actions_for("ExecuteMerge", "before", "Upgrade")) == ["b"]
    assert names(config.actions_for("ExecuteMerge", "after", "Upgrade")) == ["c"]
    assert config.actions_for("Commit", "before", "Production") == ()


# --- relative paths ------------------------------------------------------------------------


def test_action_path_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path / "site" / "upgrades",
        "june.toml",
        MINIMAL + ACTION.replace("actions/quiesce.sh", "../actions/quiesce.sh"),
    )
    monkeypatch.chdir(tmp_path)  # the current directory must not matter
    config = load_config(Path("site/upgrades/june.toml"))
    (action,) = config.custom_actions
    assert action.path.is_absolute()
    assert action.path == (tmp_path / "site" / "actions" / "quiesce.sh").resolve()
    assert config.source == path.resolve()


def test_action_path_in_an_included_file_is_relative_to_that_file(tmp_path: Path) -> None:
    write(tmp_path / "common", "actions.toml", ACTION)
    path = write(tmp_path, "upgrade.toml", 'include = ["common/actions.toml"]\n' + MINIMAL)
    (action,) = load_config(path).custom_actions
    assert action.path == (tmp_path / "common" / "actions" / "quiesce.sh").resolve()


def test_load_config_text_resolves_against_base_dir(tmp_path: Path) -> None:
    write(tmp_path, "base.toml", '[network]\nupgrade_ip = "192.0.2.50"\n')
    config = load_config_text('include = ["base.toml"]\n' + MINIMAL + ACTION, base_dir=tmp_path)
    assert config.source is None
    assert config.includes == ((tmp_path / "base.toml").resolve(),)
    assert config.upgrade_ip == ipaddress.ip_address("192.0.2.50")
    assert config.custom_actions[0].path == (tmp_path / "actions" / "quiesce.sh").resolve()


def test_load_config_text_errors_name_the_text(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"<config text>: disks\.system"):
        load_config_text("[disks]\nsystem = []\n", base_dir=tmp_path)


# --- includes --------------------------------------------------------------------------------


def test_parent_overrides_scalars_and_extends_lists(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.toml",
        """
description = "from a"
critical_services = ["OrderDB", "Spooler"]
event_logs = ["Application"]
[network]
upgrade_ip = "192.0.2.40"
team = "team0"
[disks]
system = ["system0"]
""",
    )
    write(
        tmp_path,
        "b.toml",
        """
description = "from b"
critical_services = ["WebFront"]
[network]
upgrade_ip = "192.0.2.41"
""",
    )
    parent = write(
        tmp_path,
        "parent.toml",
        """
include = ["a.toml", "b.toml"]
critical_services = ["WebFront", "OrderDB", "Audit"]
event_logs = ["System"]
[network]
upgrade_ip = "192.0.2.50"
[disks]
data = ["data0"]
""",
    )
    config = load_config(parent)
    assert config.description == "from b"  # the parent says none; the later child wins
    assert config.upgrade_ip == ipaddress.ip_address("192.0.2.50")  # the parent wins
    assert config.team == "team0"  # kept from a child
    assert config.critical_services == ("OrderDB", "Spooler", "WebFront", "Audit")
    assert config.event_logs == ("Application", "System")
    assert config.system_disks == ("system0",)
    assert config.data_disks == ("data0",)
    assert config.includes == ((tmp_path / "a.toml").resolve(), (tmp_path / "b.toml").resolve())


def test_nested_includes_in_subdirectories(tmp_path: Path) -> None:
    write(tmp_path / "lib" / "deep", "leaf.toml", 'event_logs = ["Setup"]\n')
    write(tmp_path / "lib", "mid.toml", 'include = ["deep/leaf.toml"]\nevent_logs = ["System"]\n')
    path = write(tmp_path, "top.toml", 'include = ["lib/mid.toml"]\n' + MINIMAL)
    config = load_config(path)
    assert config.event_logs == ("Setup", "System")
    assert len(config.includes) == 2


def test_diamond_include_is_not_a_cycle_and_shared_actions_merge_once(tmp_path: Path) -> None:
    write(tmp_path, "shared.toml", ACTION)
    write(tmp_path, "left.toml", 'include = ["shared.toml"]\n')
    write(tmp_path, "right.toml", 'include = ["shared.toml"]\n')
    path = write(tmp_path, "top.toml", 'include = ["left.toml", "right.toml"]\n' + MINIMAL)
    config = load_config(path)
    assert [a.name for a in config.custom_actions] == ["quiesce"]


def test_children_actions_run_before_the_parents(tmp_path: Path) -> None:
    write(tmp_path, "child.toml", ACTION.replace('"quiesce"', '"first"'))
    path = write(
        tmp_path,
        "top.toml",
        'include = ["child.toml"]\n' + MINIMAL + ACTION.replace('"quiesce"', '"second"'),
    )
    assert [a.name for a in load_config(path).custom_actions] == ["first", "second"]


def test_self_include_is_a_cycle(tmp_path: Path) -> None:
    err = config_error(tmp_path, 'include = ["upgrade.toml"]\n' + MINIMAL)
    assert "include cycle" in err.message
    assert "upgrade.toml -> " in err.message


def test_include_cycle_names_the_cycle(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", 'include = ["b.toml"]\n')
    write(tmp_path, "b.toml", 'include = ["a.toml"]\n')
    path = write(tmp_path, "top.toml", 'include = ["a.toml"]\n' + MINIMAL)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = info.value.message
    assert "include cycle" in message and ": include:" in message
    chain = message.split("include cycle ")[1]
    assert [Path(part).name for part in chain.split(" -> ")] == ["a.toml", "b.toml", "a.toml"]
    assert "top.toml" not in chain


def test_missing_include_names_the_including_file(tmp_path: Path) -> None:
    err = config_error(tmp_path, 'include = ["nowhere.toml"]\n' + MINIMAL)
    assert ": include: " in err.message and "nowhere.toml" in err.message
    assert "not found" in err.message


def test_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    child = write(tmp_path, "child.toml", "[disks]\nsytem = []\n")
    path = write(tmp_path, "top.toml", 'include = ["child.toml"]\n' + MINIMAL)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message.startswith(f"{child}: disks.sytem")


def test_different_actions_with_one_name_across_files_are_an_error(tmp_path: Path) -> None:
    child = write(tmp_path, "child.toml", ACTION)
    path = write(
        tmp_path,
        "top.toml",
        'include = ["child.toml"]\n' + MINIMAL + ACTION.replace("ExecuteMerge", "Commit"),
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = info.value.message
    assert "custom_actions" in message and "'quiesce'" in message and str(child) in message


def test_system_disk_from_child_only_satisfies_the_parent(tmp_path: Path) -> None:
    write(tmp_path, "child.toml", '[disks]\nsystem = ["system0"]\n')
    path = write(tmp_path, "top.toml", 'include = ["child.toml"]\n[disks]\ndata = ["data0"]\n')
    assert load_config(path).system_disks == ("system0",)


def test_disk_in_both_roles_across_files_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "child.toml", '[disks]\ndata = ["system0"]\n')
    path = write(tmp_path, "top.toml", 'include = ["child.toml"]\n' + MINIMAL)
    with pytest.raises(ConfigError, match=r"disks\.data: 'system0' is named both"):
        load_config(path)


# --- errors ----------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message == f"{path}: file not found"
    assert "\n" not in str(info.value)


def test_directory_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    err = config_error(tmp_path, 'description = "x"\n[disks]\nsystem = [system0]\n')
    assert "TOML syntax error" in err.message
    assert "line 3" in err.message


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        (
            MINIMAL + 'critical_service = ["OrderDB"]\n',
            "disks.critical_service",
            "critical_services",
        ),
        (
            'critical_service = ["OrderDB"]\n' + MINIMAL,
            "critical_service",
            "did you mean 'critical_services'",
        ),
        ('descripton = "x"\n' + MINIMAL, "descripton", "did you mean 'description'"),
        ("[disks]\nsytem = ['system0']\n", "disks.sytem", "did you mean 'system'"),
        (MINIMAL + '[network]\nupgrade-ip = "192.0.2.5"\n', "network.upgrade-ip", "upgrade_ip"),
        (MINIMAL + '[remote]\nusername = "x"\n', "remote.username", "user"),
        (MINIMAL + ACTION + "timeout = 5\n", "custom_actions[0].timeout", "timeout_s"),
        (MINIMAL + "[extra]\nx = 1\n", "extra", "known keys at the top level"),
    ],
)
def test_unknown_key_lists_the_known_ones(tmp_path: Path, text: str, key: str, hint: str) -> None:
    err = config_error(tmp_path, text)
    assert f": {key}: unknown key" in err.message
    assert hint in err.remedy
    assert "known keys" in err.remedy


def test_top_level_key_below_a_table_explains_why(tmp_path: Path) -> None:
    err = config_error(tmp_path, MINIMAL + 'critical_services = ["OrderDB"]\n')
    assert ": disks.critical_services: unknown key" in err.message
    assert "move it above the first table" in err.remedy


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('description = 5\n[disks]\nsystem = ["system0"]\n', "description"),
        ('include = "base.toml"\n' + MINIMAL, "include"),
        ('disks = ["system0"]\n', "disks"),
        ('[disks]\nsystem = "system0"\n', "disks.system"),
        ('[disks]\nsystem = ["system0", 1]\n', r"disks.system[1]"),
        ('[disks]\nsystem = [""]\n', r"disks.system[0]"),
        ("critical_services = [true]\n" + MINIMAL, r"critical_services[0]"),
        ('event_logs = "Application"\n' + MINIMAL, "event_logs"),
        (MINIMAL + "[network]\nupgrade_ip = 3221225522\n", "network.upgrade_ip"),
        (MINIMAL + "[network]\nteam = 0\n", "network.team"),
        ('network = "192.0.2.50"\n' + MINIMAL, "network"),
        ('custom_actions = "quiesce.sh"\n' + MINIMAL, "custom_actions"),
        (MINIMAL + ACTION + 'timeout_s = "60"\n', "custom_actions[0].timeout_s"),
        (MINIMAL + ACTION + "timeout_s = true\n", "custom_actions[0].timeout_s"),
        (MINIMAL + ACTION + 'args = "--quick"\n', "custom_actions[0].args"),
        (MINIMAL + ACTION.replace('"actions/quiesce.sh"', "42"), "custom_actions[0].path"),
        (MINIMAL + ACTION.replace('name = "quiesce"', 'name = ""'), "custom_actions[0].name"),
        (MINIMAL + "[remote]\npassword_env = 1\n", "remote.password_env"),
    ],
)
def test_wrong_type(tmp_path: Path, text: str, key: str) -> None:
    err = config_error(tmp_path, text)
    assert f": {key}: " in err.message
    assert "write" in err.remedy


@pytest.mark.parametrize(
    "text",
    [
        "[disks]\nsystem = []\n",
        '[disks]\ndata = ["data0"]\n',
        'description = "no disks at all"\n',
    ],
)
def test_empty_system_disk_list(tmp_path: Path, text: str) -> None:
    err = config_error(tmp_path, text)
    assert ": disks.system: no system disk named" in err.message
    assert 'system = ["system0"]' in err.remedy


def test_disk_named_as_system_and_data(tmp_path: Path) -> None:
    err = config_error(tmp_path, '[disks]\nsystem = ["system0"]\ndata = ["data0", "system0"]\n')
    assert (
        ": disks.data: 'system0' is named both as a system disk and as a data disk" in err.message
    )


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        ('request = "ExecuteMerge"', 'request = "Merge"', "request", "ExecuteMerge"),
        (
            'request = "ExecuteMerge"',
            'request = "executemerge"',
            "request",
            "did you mean 'ExecuteMerge'",
        ),
        ('when = "before"', 'when = "during"', "when", "before, after"),
        (
            'when = "before"',
            'when = "before"\nside = "Primary"',
            "side",
            "Production, Upgrade, Both",
        ),
        ('when = "before"', 'when = "before"\ntimeout_s = 0', "timeout_s", "timeout_s = 300"),
        ('when = "before"', 'when = "before"\ntimeout_s = -5', "timeout_s", "timeout_s = 300"),
        ('when = "before"', 'when = "before"\ntimeout_s = nan', "timeout_s", "timeout_s = 300"),
        ('when = "before"', 'when = "before"\ntimeout_s = inf', "timeout_s", "timeout_s = 300"),
    ],
)
def test_bad_action_values(tmp_path: Path, old: str, new: str, key: str, expected: str) -> None:
    err = config_error(tmp_path, MINIMAL + ACTION.replace(old, new))
    assert f": custom_actions[0].{key}: " in err.message
    assert expected in err.remedy


@pytest.mark.parametrize("key", ["name", "path", "when", "request"])
def test_missing_action_key(tmp_path: Path, key: str) -> None:
    lines = [line for line in ACTION.splitlines() if not line.startswith(f"{key} =")]
    err = config_error(tmp_path, MINIMAL + "\n".join(lines) + "\n")
    assert f": custom_actions[0].{key}: missing" in err.message


def test_duplicate_action_names_in_one_file(tmp_path: Path) -> None:
    err = config_error(tmp_path, MINIMAL + ACTION + ACTION.replace("before", "after"))
    assert (
        ": custom_actions[1].name: 'quiesce' is already the name of custom_actions[0]"
        in err.message
    )


@pytest.mark.parametrize(
    "ip", ["192.0.2.500", "192.0.2.0/24", "upgrade-host", "0.0.0.0", "127.0.0.1", "224.0.0.5"]
)
def test_bad_upgrade_ip(tmp_path: Path, ip: str) -> None:
    err = config_error(tmp_path, MINIMAL + f'[network]\nupgrade_ip = "{ip}"\n')
    assert ": network.upgrade_ip: " in err.message and ip in err.message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('password = "hunter2"\n' + MINIMAL, "password"),
        (MINIMAL + '[remote]\nuser = "admin"\npassword = "hunter2"\n', "remote.password"),
        (MINIMAL + '[network]\nsecret = "hunter2"\n', "network.secret"),
        (MINIMAL + ACTION + 'token = "hunter2"\n', "custom_actions[0].token"),
        (MINIMAL + '[remote]\napi_token = "hunter2"\n', "remote.api_token"),
        (MINIMAL + '[vault]\nadmin = { password = "hunter2" }\n', "vault.admin.password"),
        (MINIMAL + ACTION + 'args = ["--password=hunter2"]\n', "custom_actions[0].args[0]"),
    ],
)
def test_literal_secret_is_refused_without_echoing_it(tmp_path: Path, text: str, key: str) -> None:
    err = config_error(tmp_path, text)
    assert f": {key}: a secret must not be written in the configuration" in err.message
    assert "hunter2" not in str(err)
    assert "environment variable" in err.remedy


def test_literal_secret_in_an_included_file_is_refused(tmp_path: Path) -> None:
    secrets = write(tmp_path, "secrets.toml", '[remote]\npassword = "hunter2"\n')
    path = write(tmp_path, "upgrade.toml", 'include = ["secrets.toml"]\n' + MINIMAL)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message.startswith(f"{secrets}: remote.password: a secret")
    assert "hunter2" not in str(info.value)


def test_password_env_must_be_a_variable_name(tmp_path: Path) -> None:
    err = config_error(tmp_path, MINIMAL + '[remote]\npassword_env = "hunter 2!"\n')
    assert ": remote.password_env: " in err.message
    assert "password_env" in err.remedy


def test_config_error_pickles(tmp_path: Path) -> None:
    err = config_error(tmp_path, "[disks]\nsystem = []\n")
    clone = pickle.loads(pickle.dumps(err))
    assert isinstance(clone, ConfigError) and isinstance(clone, FtkitError)
    assert str(clone) == str(err)


# --- secrets, digest, to_dict ----------------------------------------------------------------


def test_remote_password_comes_from_the_named_environment_variable(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "c.toml", MINIMAL + '[remote]\npassword_env = "MY_PW"\n'))
    assert config.remote_password({"MY_PW": "s3cret"}) == "s3cret"
    with pytest.raises(ConfigError, match="MY_PW is not set"):
        config.remote_password({})
    assert "s3cret" not in json.dumps(config.to_dict())
    assert load_config(write(tmp_path, "d.toml", MINIMAL)).remote_password({}) is None


def test_to_dict_is_json_safe_and_carries_the_digest(tmp_path: Path) -> None:
    text = (
        MINIMAL + '[network]\nupgrade_ip = "192.0.2.50"\n[remote]\npassword_env = "PW"\n' + ACTION
    )
    config = load_config(write(tmp_path, "c.toml", text))
    data = json.loads(json.dumps(config.to_dict()))
    assert data["network"]["upgrade_ip"] == "192.0.2.50"
    assert data["remote"] == {"user": None, "password_env": "PW"}
    assert data["custom_actions"][0]["path"] == str((tmp_path / "actions" / "quiesce.sh").resolve())
    assert data["digest"] == config.digest
    assert data["source"] == str((tmp_path / "c.toml").resolve())


def test_digest_ignores_formatting_and_layout_but_not_content(tmp_path: Path) -> None:
    one = load_config(
        write(tmp_path, "one.toml", MINIMAL + '[network]\nupgrade_ip = "192.0.2.50"\n')
    )
    write(tmp_path, "net.toml", "# the network lives here\n[network]\nupgrade_ip='192.0.2.50'\n")
    two = load_config(
        write(
            tmp_path,
            "two.toml",
            """
include = ["net.toml"]
description = "test"
[disks]
data = ["data0"]     # key order and comments do not matter
system = ["system0"]
""",
        )
    )
    assert len(one.digest) == 64
    assert one.digest == two.digest
    assert one.source != two.source
    other = load_config(
        write(tmp_path, "other.toml", MINIMAL + '[network]\nupgrade_ip = "192.0.2.51"\n')
    )
    assert other.digest != one.digest


# --- the shipped examples --------------------------------------------------------------------


def test_demo_config_example() -> None:
    config = load_config(EXAMPLES / "demo-config.toml")
    assert isinstance(config, UpgradeConfig)
    assert config.description
    assert config.includes == ((EXAMPLES / "base.toml").resolve(),)
    assert config.system_disks == ("system0",)
    assert config.data_disks == ("data0", "ext0")
    assert config.critical_services == ("OrderDB", "WebFront")
    assert config.event_logs  # from base.toml
    assert config.upgrade_ip == ipaddress.ip_address("192.0.2.50")
    assert config.team == "team0"
    before = config.actions_for("ExecuteMerge", "before", "Production")
    after = config.actions_for("ExecuteMerge", "after", "Upgrade")
    assert [a.path for a in before] == [(EXAMPLES / "actions" / "quiesce.sh").resolve()]
    assert [a.path for a in after] == [(EXAMPLES / "actions" / "smoke-test.sh").resolve()]
    assert len(config.custom_actions) == 2


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell scripts")
@pytest.mark.parametrize("script", ["quiesce.sh", "smoke-test.sh"])
def test_example_actions_are_executable_and_print_their_environment(script: str) -> None:
    path = EXAMPLES / "actions" / script
    assert os.access(path, os.X_OK), f"{path} needs its executable bit"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ACTIVE_UPGRADE_SIDE": "Production",
        "ACTIVE_UPGRADE_STATE": "PrepareMerge",
        "ACTIVE_UPGRADE_REQUEST": "ExecuteMerge",
        "ACTIVE_UPGRADE_HW_SPLIT": "Yes",
    }
    result = subprocess.run(
        [str(path)], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    for name, value in env.items():
        if name.startswith("ACTIVE_UPGRADE_"):
            assert f"{name}={value}" in result.stdout


# --- bounded input (issue 8: hostile files, values that crashed mid-upgrade) ----------------


@pytest.mark.parametrize("value", ["1e308", "86400.5", "1e6", "nan", "inf", "-inf", "-1", "0"])
def test_action_timeout_outside_its_bounds_is_refused(tmp_path: Path, value: str) -> None:
    err = config_error(tmp_path, MINIMAL + ACTION + f"timeout_s = {value}\n")
    assert ": custom_actions[0].timeout_s: must be " in err.message
    assert "86400 seconds" in err.message + err.remedy
    assert "timeout_s = 300" in err.remedy


def test_action_timeout_of_a_day_is_the_largest_accepted(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "c.toml", MINIMAL + ACTION + "timeout_s = 86400\n"))
    assert config.custom_actions[0].timeout_s == MAX_TIMEOUT_S == 86400


def _in_thread(function: Callable[[], object], timeout: float = 10) -> BaseException | None:
    """The exception ``function`` raised within ``timeout`` s; fails if it is still running."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            function()
            outcome.append(None)
        except BaseException as exc:  # handed back to the test
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert outcome, f"still running after {timeout} s"
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "upgrade.toml"
    os.mkfifo(fifo)
    err = _in_thread(lambda: load_config(fifo))
    assert isinstance(err, ConfigError)
    assert err.message == f"{fifo}: is not a regular file (a pipe, socket or device)"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_an_included_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.toml")
    path = write(tmp_path, "upgrade.toml", 'include = ["pipe.toml"]\n' + MINIMAL)
    err = _in_thread(lambda: load_config(path))
    assert isinstance(err, ConfigError) and "is not a regular file" in err.message


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_dev_zero_is_refused_before_it_is_read() -> None:
    err = _in_thread(lambda: load_config("/dev/zero"), timeout=5)
    assert isinstance(err, ConfigError)
    assert "/dev/zero: is not a regular file" in err.message


def test_a_file_over_one_mebibyte_is_refused(tmp_path: Path) -> None:
    err = config_error(tmp_path, MINIMAL + "# " + "x" * (1 << 20) + "\n")
    assert "is larger than 1024 KiB" in err.message


@pytest.mark.parametrize("depth", [17, 3000])
def test_deeply_nested_toml_is_refused(tmp_path: Path, depth: int) -> None:
    err = config_error(tmp_path, MINIMAL.replace('data = ["data0"]', "data = " + "[" * depth
                                                 + '"x"' + "]" * depth))
    assert "nested more than 16 deep" in err.message


def _include_chain(tmp_path: Path, levels: int) -> Path:
    """f0 includes f1 twice (two spellings), f1 includes f2 twice, ... : a diamond chain."""
    write(tmp_path, f"f{levels}.toml", 'event_logs = ["Setup"]\n')
    for level in range(levels - 1, 0, -1):
        write(tmp_path, f"f{level}.toml",
              f'include = ["f{level + 1}.toml", "./f{level + 1}.toml"]\n')
    return write(tmp_path, "f0.toml", 'include = ["f1.toml", "./f1.toml"]\n' + MINIMAL)


def test_a_diamond_of_includes_is_read_once_per_file(tmp_path: Path) -> None:
    path = _include_chain(tmp_path, 16)  # 2**16 loads if each include were read again
    started = time.monotonic()
    config = load_config(path)
    assert time.monotonic() - started < 5
    assert config.event_logs == ("Setup",)
    assert len(config.includes) == 16


def test_includes_nested_too_deep_are_refused_quickly(tmp_path: Path) -> None:
    path = _include_chain(tmp_path, 25)
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert time.monotonic() - started < 5
    assert f"includes nest more than {MAX_INCLUDE_DEPTH} deep" in info.value.message
    assert "\n" not in str(info.value)


def test_more_than_64_included_files_are_refused(tmp_path: Path) -> None:
    names = [f"part{i}.toml" for i in range(MAX_INCLUDES + 1)]
    for name in names:
        write(tmp_path, name, 'event_logs = ["Setup"]\n')
    err = config_error(tmp_path, f"include = {json.dumps(names)}\n" + MINIMAL)
    assert f"more than {MAX_INCLUDES} files included" in err.message


def test_custom_action_requests_are_the_model_requests() -> None:
    assert tuple(REQUESTS) == tuple(request.value for request in ACTION_REQUESTS)


# --- secrets by reference (issue 8: a secret in the journal, a literal in args) --------------


@pytest.mark.parametrize(
    ("args", "index"),
    [
        ('["--password", "hunter2"]', 1),
        ('["-v", "--db-token", "hunter2"]', 2),
        ('["--quiet", "token=hunter2"]', 1),
        ('["PASSWORD: hunter2"]', 0),
        ('["--client-secret", "hunter2", "--quiet"]', 1),
    ],
)
def test_secret_literal_in_args_is_refused(tmp_path: Path, args: str, index: int) -> None:
    err = config_error(tmp_path, MINIMAL + ACTION + f"args = {args}\n")
    assert f": custom_actions[0].args[{index}]: a secret must not be written" in err.message
    assert "hunter2" not in str(err)
    assert "secret_env" in err.remedy and "environment variable" in err.remedy


@pytest.mark.parametrize(
    "args",
    ['["--password-file", "/etc/orderdb/pw"]', '["--token-env", "DB_TOKEN"]', '["--password"]'],
)
def test_a_flag_naming_where_the_secret_is_passes(tmp_path: Path, args: str) -> None:
    config = load_config(write(tmp_path, "c.toml", MINIMAL + ACTION + f"args = {args}\n"))
    assert config.custom_actions[0].args == tuple(json.loads(args))


ENV_ACTION = ACTION + 'env = ["ORACLE_HOME"]\nsecret_env = ["DB_PASSWORD"]\n'


def test_action_environment_is_declared_not_inherited(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "c.toml", MINIMAL + '[remote]\npassword_env = "PW"\n' + ENV_ACTION)
    )
    action = config.custom_actions[0]
    assert (action.env, action.secret_env) == (("ORACLE_HOME",), ("DB_PASSWORD",))
    assert config.secret_env == ("PW", "DB_PASSWORD")
    caller = {"PATH": "/bin", "HOME": "/root", "PW": "pw1", "ORACLE_HOME": "/opt/o",
              "DB_PASSWORD": "dbpw", "AWS_SECRET_ACCESS_KEY": "nope"}
    env = action.environment({"ACTIVE_UPGRADE_SIDE": "Production"}, environ=caller)
    assert env == {"PATH": "/bin", "ORACLE_HOME": "/opt/o", "DB_PASSWORD": "dbpw",
                   "ACTIVE_UPGRADE_SIDE": "Production"}
    with pytest.raises(ConfigError, match="DB_PASSWORD is not set"):
        action.environment({}, environ={"PATH": "/bin"})
    assert action.environment({}, environ={"DB_PASSWORD": "x"}) == {"DB_PASSWORD": "x"}
    data = config.to_dict()
    assert data["custom_actions"][0]["secret_env"] == ["DB_PASSWORD"]
    assert "dbpw" not in json.dumps(data)


def test_actions_without_env_keep_their_digest(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "c.toml", MINIMAL + ACTION))
    assert "env" not in config.custom_actions[0].to_dict()
    with_env = load_config(write(tmp_path, "d.toml", MINIMAL + ENV_ACTION))
    assert with_env.digest != config.digest


@pytest.mark.parametrize(
    ("line", "key", "problem"),
    [
        ('env = ["ORACLE HOME"]', "env[0]", "is not an environment variable name"),
        ('secret_env = ["1PW"]', "secret_env[0]", "is not an environment variable name"),
        ('env = ["ACTIVE_UPGRADE_SIDE"]', "env[0]", "is set by ftkit"),
        ('env = ["PATH", "DB_PASSWORD"]', "env[1]", "DB_PASSWORD looks like a secret"),
    ],
)
def test_bad_action_environment(tmp_path: Path, line: str, key: str, problem: str) -> None:
    err = config_error(tmp_path, MINIMAL + ACTION + line + "\n")
    assert f": custom_actions[0].{key}: " in err.message and problem in err.message


def test_remote_password_is_registered_for_masking(tmp_path: Path) -> None:
    forget_secrets()
    try:
        config = load_config(write(tmp_path, "c.toml", MINIMAL + '[remote]\npassword_env = "PW"\n'))
        assert config.remote_password({"PW": "pa55word"}) == "pa55word"
        assert scrub("login pa55word ok") == f"login {MASK} ok"
    finally:
        forget_secrets()
