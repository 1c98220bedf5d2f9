"""Upgrade configuration: a TOML file naming what Active Upgrade splits, moves and runs.

A configuration names the system disks (upgraded) and data disks (kept by the Production
side while split), the critical services, the event logs to back up, the upgrade-side IP
and the custom actions. It may include child configurations::

    description = "Monthly patch window"
    include = ["base.toml"]              # relative to this file; merged first
    critical_services = ["OrderDB"]

    [disks]
    system = ["system0"]
    data = ["data0", "ext0"]

    [network]
    upgrade_ip = "192.0.2.50"
    team = "team0"

    [[custom_actions]]
    name = "quiesce"
    path = "actions/quiesce.sh"          # relative to this file; absolute once loaded
    when = "before"
    request = "ExecuteMerge"
    side = "Production"                  # Production | Upgrade | Both
    timeout_s = 60

    [remote]
    user = "upgrade-admin"
    password_env = "FTKIT_UPGRADE_PASSWORD"   # the variable's name, never the secret

Children are merged first, in the order listed; the including file then overrides their
scalars and extends their lists without duplicates. Only what the file alone can tell is
checked here; whether the named disks and services exist on a system is the readiness
check's business. Every problem raises one :class:`~ftkit.errors.ConfigError` naming the
file, the key and what to write instead.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from ftkit.errors import ConfigError, FtkitError

__all__ = [
    "REQUESTS",
    "SIDES",
    "WHEN",
    "CustomAction",
    "IPAddress",
    "UpgradeConfig",
    "load_config",
    "load_config_text",
]

#: Requests a custom action can be attached to (the vendor's ``ACTIVE_UPGRADE_REQUEST``).
REQUESTS: tuple[str, ...] = (
    "CheckReadiness",
    "PrepareSplit",
    "ExecuteSplit",
    "PrepareMerge",
    "ExecuteMerge",
    "Commit",
    "Abort",
    "Start",
    "Stop",
    "Backup",
)
#: Where a custom action runs; ``Both`` runs it on the Production side and the Upgrade side.
SIDES: tuple[str, ...] = ("Production", "Upgrade", "Both")
#: When a custom action runs relative to its request.
WHEN: tuple[str, ...] = ("before", "after")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_TIMEOUT_S = 300.0
_PASSWORD_ENV_EXAMPLE = 'password_env = "FTKIT_UPGRADE_PASSWORD"'
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_WORDS = frozenset({"password", "passwd", "secret", "token"})
_SECRET_ARG = re.compile(r"(password|passwd|secret|token)\s*[=:]", re.IGNORECASE)

_TOP_KEYS = (
    "description",
    "include",
    "disks",
    "critical_services",
    "event_logs",
    "network",
    "custom_actions",
    "remote",
)
_DISK_KEYS = ("system", "data")
_NETWORK_KEYS = ("upgrade_ip", "team")
_REMOTE_KEYS = ("user", "password_env")
_ACTION_KEYS = ("name", "path", "when", "request", "side", "timeout_s", "args")


@dataclass(frozen=True)
class CustomAction:
    """One executable run before or after an Active Upgrade request.

    ``path`` is absolute (resolved against the configuration file that names it); whether
    it exists and is executable is checked by the readiness check, not here.
    """

    name: str
    path: Path
    when: str
    request: str
    side: str = "Production"
    timeout_s: float = _DEFAULT_TIMEOUT_S
    args: tuple[str, ...] = ()

    def runs_on(self, side: str) -> bool:
        """True if the action runs on ``side`` (``"Production"`` or ``"Upgrade"``)."""
        return self.side in (side, "Both")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "name": self.name,
            "path": str(self.path),
            "when": self.when,
            "request": self.request,
            "side": self.side,
            "timeout_s": self.timeout_s,
            "args": list(self.args),
        }


@dataclass(frozen=True)
class UpgradeConfig:
    """A loaded, merged and validated upgrade configuration (read-only).

    ``source`` is the file it was loaded from (``None`` for text) and ``includes`` every
    child configuration merged into it, in load order. Neither is part of ``digest``.
    """

    description: str
    system_disks: tuple[str, ...]
    data_disks: tuple[str, ...] = ()
    critical_services: tuple[str, ...] = ()
    event_logs: tuple[str, ...] = ()
    upgrade_ip: IPAddress | None = None
    team: str | None = None
    custom_actions: tuple[CustomAction, ...] = ()
    remote_user: str | None = None
    password_env: str | None = None
    source: Path | None = None
    includes: tuple[Path, ...] = ()

    def _content(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "disks": {"system": list(self.system_disks), "data": list(self.data_disks)},
            "critical_services": list(self.critical_services),
            "event_logs": list(self.event_logs),
            "network": {
                "upgrade_ip": None if self.upgrade_ip is None else str(self.upgrade_ip),
                "team": self.team,
            },
            "custom_actions": [action.to_dict() for action in self.custom_actions],
            "remote": {"user": self.remote_user, "password_env": self.password_env},
        }

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON of the merged content.

        Equal configurations have equal digests whatever their formatting, comments,
        key order or split into included files.
        """
        canonical = json.dumps(self._content(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, with ``source``, ``includes`` and ``digest``. Holds no secret:
        only the *name* of the password environment variable."""
        data = self._content()
        data["source"] = None if self.source is None else str(self.source)
        data["includes"] = [str(path) for path in self.includes]
        data["digest"] = self.digest
        return data

    def actions_for(self, request: str, when: str, side: str) -> tuple[CustomAction, ...]:
        """The custom actions to run ``when`` (before|after) ``request`` on ``side``, in order."""
        return tuple(
            action
            for action in self.custom_actions
            if action.request == request and action.when == when and action.runs_on(side)
        )

    def remote_password(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The upgrade-side password from the environment variable named by
        ``password_env``; ``None`` when the configuration names none.

        Raises :class:`ConfigError` if the variable is named but not set.
        """
        if self.password_env is None:
            return None
        env = os.environ if environ is None else environ
        value = env.get(self.password_env)
        if value is None:
            raise ConfigError(
                f"environment variable {self.password_env} is not set "
                f"(named by remote.password_env in {self.source or 'the configuration'})",
                f"set {self.password_env} in the environment that runs ftkit",
            )
        return value


def load_config(path: str | os.PathLike[str]) -> UpgradeConfig:
    """Load, merge (includes first) and validate the upgrade configuration at ``path``.

    Read-only. Raises :class:`ConfigError` naming the file, key and fix.
    """
    label = str(path)
    file = Path(path)
    text = _read_text(file, label, ConfigError)
    resolved = file.resolve()
    loader = _Loader()
    layer = loader.load(text, label=label, base_dir=resolved.parent, stack=((resolved, label),))
    return _finish(layer, source=resolved, includes=tuple(loader.includes))


def load_config_text(text: str, *, base_dir: str | Path) -> UpgradeConfig:
    """Like :func:`load_config` for TOML text; includes and action paths are relative
    to ``base_dir``. ``source`` is ``None``."""
    loader = _Loader()
    layer = loader.load(text, label="<config text>", base_dir=Path(base_dir).resolve(), stack=())
    return _finish(layer, source=None, includes=tuple(loader.includes))


# --- TOML reading shared with ftkit.packages --------------------------------------------


def _read_bytes(file: Path, label: str, error: type[FtkitError]) -> bytes:
    try:
        return file.read_bytes()
    except FileNotFoundError:
        raise error(
            f"{label}: file not found",
            "check the path (relative paths are relative to the current directory)",
        ) from None
    except IsADirectoryError:
        raise error(f"{label}: is a directory, not a TOML file", "name the .toml file") from None
    except OSError as exc:
        raise error(f"{label}: cannot be read: {exc.strerror}", "check its permissions") from None


def _decode(data: bytes, label: str, error: type[FtkitError]) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise error(f"{label}: is not UTF-8 text", "save the file as UTF-8") from None


def _read_text(file: Path, label: str, error: type[FtkitError]) -> str:
    return _decode(_read_bytes(file, label, error), label, error)


def _parse_toml(text: str, label: str, error: type[FtkitError]) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = " ".join(str(exc).split())  # one line; tomllib names line and column
        raise error(
            f"{label}: TOML syntax error: {problem}",
            'fix the TOML at that line (strings need "quotes", lists [brackets], '
            "tables [name] on their own line)",
        ) from None


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


class _Reader:
    """Typed access to one parsed TOML document; every failure names the file and key."""

    def __init__(self, label: str, error: type[FtkitError], top_keys: Sequence[str]) -> None:
        self.label = label
        self.error = error
        self.top_keys = tuple(top_keys)

    def fail(self, key: str, problem: str, remedy: str) -> NoReturn:
        raise self.error(f"{self.label}: {key}: {problem}", remedy)

    def known(self, table: Mapping[str, Any], keys: Sequence[str], where: str = "") -> None:
        for key in table:
            if key in keys:
                continue
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            top = difflib.get_close_matches(key, self.top_keys, n=1) if where else []
            if top and not close:
                hint += (
                    f"{top[0]!r} is a top-level key: a key written below a [table] header "
                    "belongs to that table, so move it above the first table; "
                )
            place = f"in [{where}]" if where else "at the top level"
            self.fail(
                _join(where, key), "unknown key", f"{hint}known keys {place}: " + ", ".join(keys)
            )

    def present(self, table: Mapping[str, Any], key: str, where: str, example: str) -> Any:
        if key not in table:
            self.fail(_join(where, key), "missing", f"write {example}")
        return table[key]

    def text(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        example: str,
        *,
        required: bool = False,
    ) -> str | None:
        if key not in table:
            if required:
                self.present(table, key, where, example)
            return None
        value = table[key]
        if not isinstance(value, str):
            self.fail(
                _join(where, key), f"expected a string, got {_type_name(value)}", f"write {example}"
            )
        if not value.strip():
            self.fail(_join(where, key), "is empty", f"write {example}")
        return value

    def names(
        self, table: Mapping[str, Any], key: str, where: str, example: str
    ) -> tuple[str, ...] | None:
        """A list of non-empty strings, duplicates dropped (first one kept)."""
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, list):
            self.fail(
                _join(where, key),
                f"expected a list of strings, got {_type_name(value)}",
                f"write {example}",
            )
        for index, item in enumerate(value):
            if not isinstance(item, str):
                self.fail(
                    f"{_join(where, key)}[{index}]",
                    f"expected a string, got {_type_name(item)}",
                    f"write {example}",
                )
            if not item.strip():
                self.fail(f"{_join(where, key)}[{index}]", "is empty", f"write {example}")
        return tuple(dict.fromkeys(value))

    def flag(
        self, table: Mapping[str, Any], key: str, where: str, *, required: bool = False
    ) -> bool | None:
        if key not in table:
            if required:
                self.present(table, key, where, f"{key} = true (or false)")
            return None
        value = table[key]
        if not isinstance(value, bool):
            self.fail(
                _join(where, key),
                f"expected true or false, got {_type_name(value)}",
                f"write {key} = true or {key} = false (no quotes)",
            )
        return value

    def positive(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        example: str,
        *,
        required: bool = False,
    ) -> float | None:
        if key not in table:
            if required:
                self.present(table, key, where, example)
            return None
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(
                _join(where, key),
                f"expected a number, got {_type_name(value)}",
                f"write {example} (no quotes)",
            )
        if not value > 0:  # also refuses nan
            self.fail(_join(where, key), f"must be greater than 0, got {value}", f"write {example}")
        if value == float("inf"):
            self.fail(_join(where, key), "must be finite", f"write {example}")
        return float(value)

    def choice(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        choices: Sequence[str],
        *,
        required: bool = False,
    ) -> str | None:
        example = f'{key} = "{choices[0]}"'
        value = self.text(table, key, where, example, required=required)
        if value is not None and value not in choices:
            close = difflib.get_close_matches(value, choices, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self.fail(
                _join(where, key),
                f"unknown value {value!r}",
                f"{hint}write one of: " + ", ".join(choices),
            )
        return value

    def table(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        keys: Sequence[str],
        example: str,
        *,
        required: bool = False,
    ) -> dict[str, Any] | None:
        if key not in table:
            if required:
                self.present(table, key, where, example)
            return None
        value = table[key]
        if not isinstance(value, dict):
            self.fail(
                _join(where, key),
                f"expected a table, got {_type_name(value)}",
                f"write it as a table: {example}",
            )
        self.known(value, keys, _join(where, key))
        return value


# --- configuration layers and merging ----------------------------------------------------


@dataclass
class _Layer:
    """What one file says (or several files, once merged); ``None`` means "not said"."""

    label: str
    description: str | None = None
    system: tuple[str, ...] = ()
    data: tuple[str, ...] = ()
    critical_services: tuple[str, ...] = ()
    event_logs: tuple[str, ...] = ()
    upgrade_ip: IPAddress | None = None
    team: str | None = None
    actions: tuple[tuple[CustomAction, str], ...] = ()  # (action, file that defines it)
    remote_user: str | None = None
    password_env: str | None = None
    include: tuple[tuple[str, Path], ...] = ()  # (label, path) as written, made absolute


def _extend(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(old + new))


def _merge(base: _Layer, over: _Layer) -> _Layer:
    """``over`` overrides ``base``'s scalars and extends its lists without duplicates."""
    actions = list(base.actions)
    by_name = {action.name: (action, label) for action, label in actions}
    for action, label in over.actions:
        if action.name in by_name:
            earlier, earlier_label = by_name[action.name]
            if earlier == action:
                continue  # the same action reached twice (an include shared by two files)
            raise ConfigError(
                f"{label}: custom_actions: action name {action.name!r} is also used "
                f"by a different action in {earlier_label}",
                "give each custom action a unique name, or remove one of the two",
            )
        by_name[action.name] = (action, label)
        actions.append((action, label))
    return _Layer(
        label=over.label,
        description=over.description if over.description is not None else base.description,
        system=_extend(base.system, over.system),
        data=_extend(base.data, over.data),
        critical_services=_extend(base.critical_services, over.critical_services),
        event_logs=_extend(base.event_logs, over.event_logs),
        upgrade_ip=over.upgrade_ip if over.upgrade_ip is not None else base.upgrade_ip,
        team=over.team if over.team is not None else base.team,
        actions=tuple(actions),
        remote_user=over.remote_user if over.remote_user is not None else base.remote_user,
        password_env=over.password_env if over.password_env is not None else base.password_env,
    )


def _find_secret(value: Any, where: str) -> str | None:
    """The key path of the first key that looks like it holds a secret, if any."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = _join(where, key)
            words = set(re.split(r"[_\-.\s]+", key.lower()))
            if key != "password_env" and words & _SECRET_WORDS:
                return path
            found = _find_secret(item, path)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_secret(item, f"{where}[{index}]")
            if found:
                return found
    return None


def _read_layer(raw: dict[str, Any], label: str, base_dir: Path) -> _Layer:
    """Validate one file on its own and turn it into a layer (paths made absolute)."""
    secret = _find_secret(raw, "")
    if secret is not None:
        raise ConfigError(
            f"{label}: {secret}: a secret must not be written in the configuration",
            "put it in an environment variable and name it with "
            f"{_PASSWORD_ENV_EXAMPLE} under [remote]",
        )
    r = _Reader(label, ConfigError, _TOP_KEYS)
    r.known(raw, _TOP_KEYS)
    layer = _Layer(label=label)
    layer.description = r.text(raw, "description", "", 'description = "Monthly patch window"')

    includes = r.names(raw, "include", "", 'include = ["base.toml"]') or ()
    layer.include = tuple((str(base_dir / name), base_dir / name) for name in includes)

    disks = r.table(raw, "disks", "", _DISK_KEYS, '[disks] system = ["system0"]') or {}
    layer.system = r.names(disks, "system", "disks", 'system = ["system0"]') or ()
    layer.data = r.names(disks, "data", "disks", 'data = ["data0", "ext0"]') or ()
    layer.critical_services = (
        r.names(
            raw, "critical_services", "", 'critical_services = ["OrderDB"] above the first [table]'
        )
        or ()
    )
    layer.event_logs = (
        r.names(
            raw, "event_logs", "", 'event_logs = ["Application", "System"] above the first [table]'
        )
        or ()
    )

    network = r.table(raw, "network", "", _NETWORK_KEYS, '[network] upgrade_ip = "192.0.2.50"')
    if network is not None:
        ip_text = r.text(network, "upgrade_ip", "network", 'upgrade_ip = "192.0.2.50"')
        if ip_text is not None:
            layer.upgrade_ip = _parse_ip(r, ip_text)
        layer.team = r.text(network, "team", "network", 'team = "team0"')

    remote = r.table(raw, "remote", "", _REMOTE_KEYS, '[remote] user = "upgrade-admin"')
    if remote is not None:
        layer.remote_user = r.text(remote, "user", "remote", 'user = "upgrade-admin"')
        env_name = r.text(remote, "password_env", "remote", _PASSWORD_ENV_EXAMPLE)
        if env_name is not None and not _ENV_NAME.fullmatch(env_name):
            r.fail(
                "remote.password_env",
                f"{env_name!r} is not an environment variable name",
                f"name the variable that holds the password: {_PASSWORD_ENV_EXAMPLE}",
            )
        layer.password_env = env_name

    layer.actions = tuple((action, label) for action in _read_actions(r, raw, base_dir))
    return layer


def _parse_ip(r: _Reader, text: str) -> IPAddress:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        r.fail(
            "network.upgrade_ip",
            f"{text!r} is not an IP address",
            'write one spare address on the team\'s network: upgrade_ip = "192.0.2.50" '
            "(no prefix length)",
        )
    if ip.is_unspecified or ip.is_loopback or ip.is_multicast:
        r.fail(
            "network.upgrade_ip",
            f"{text!r} cannot be a host address",
            "write a spare, unused address on the team's network",
        )
    return ip


def _read_actions(r: _Reader, raw: dict[str, Any], base_dir: Path) -> list[CustomAction]:
    if "custom_actions" not in raw:
        return []
    entries = raw["custom_actions"]
    example = '[[custom_actions]] name = "quiesce" (one [[custom_actions]] block per action)'
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        r.fail(
            "custom_actions",
            f"expected an array of tables, got {_type_name(entries)}",
            f"write each action as {example}",
        )
    actions: list[CustomAction] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = f"custom_actions[{index}]"
        r.known(entry, _ACTION_KEYS, where)
        name = r.text(entry, "name", where, 'name = "quiesce"', required=True)
        assert name is not None
        if name in seen:
            r.fail(
                f"{where}.name",
                f"{name!r} is already the name of custom_actions[{seen[name]}]",
                "give each custom action a unique name",
            )
        seen[name] = index
        path = r.text(entry, "path", where, 'path = "actions/quiesce.sh"', required=True)
        when = r.choice(entry, "when", where, WHEN, required=True)
        request = r.choice(entry, "request", where, REQUESTS, required=True)
        side = r.choice(entry, "side", where, SIDES) or "Production"
        timeout = r.positive(entry, "timeout_s", where, "timeout_s = 300")
        args = r.names(entry, "args", where, 'args = ["--quiet"]') or ()
        for arg_index, arg in enumerate(args):
            if _SECRET_ARG.search(arg):
                r.fail(
                    f"{where}.args[{arg_index}]",
                    "a secret must not be written in the configuration",
                    "let the action read it from an environment variable instead",
                )
        assert path is not None and when is not None and request is not None
        actions.append(
            CustomAction(
                name=name,
                path=(base_dir / path).resolve(),
                when=when,
                request=request,
                side=side,
                timeout_s=_DEFAULT_TIMEOUT_S if timeout is None else timeout,
                args=args,
            )
        )
    return actions


class _Loader:
    """Loads one configuration tree, remembering every included file."""

    def __init__(self) -> None:
        self.includes: list[Path] = []

    def load(
        self, text: str, *, label: str, base_dir: Path, stack: tuple[tuple[Path, str], ...]
    ) -> _Layer:
        own = _read_layer(_parse_toml(text, label, ConfigError), label, base_dir)
        merged = _Layer(label=label)
        for child_label, child_path in own.include:
            resolved = child_path.resolve()
            chain = [lbl for path, lbl in stack]
            for position, (path, _lbl) in enumerate(stack):
                if path == resolved:
                    cycle = " -> ".join([*chain[position:], child_label])
                    raise ConfigError(
                        f"{label}: include: include cycle {cycle}",
                        "remove one of these includes; a configuration may not include "
                        "itself, directly or through other files",
                    )
            if not child_path.is_file():
                raise ConfigError(
                    f"{label}: include: {child_label}: file not found",
                    f"include paths are relative to the including file ({base_dir}); "
                    "fix the path or create the file",
                )
            child_text = _read_text(child_path, child_label, ConfigError)
            if resolved not in self.includes:
                self.includes.append(resolved)
            child = self.load(
                child_text,
                label=child_label,
                base_dir=resolved.parent,
                stack=(*stack, (resolved, child_label)),
            )
            merged = _merge(merged, child)
        return _merge(merged, own)


def _finish(layer: _Layer, *, source: Path | None, includes: tuple[Path, ...]) -> UpgradeConfig:
    """Checks that need the whole merged configuration, then the frozen result."""
    merged_note = " (after merging its includes)" if includes else ""
    if not layer.system:
        raise ConfigError(
            f"{layer.label}: disks.system: no system disk named{merged_note}",
            'name the RDR-mirrored system disk(s): [disks] system = ["system0"]',
        )
    both = [disk for disk in layer.system if disk in layer.data]
    if both:
        raise ConfigError(
            f"{layer.label}: disks.data: {both[0]!r} is named both as a system disk and as a "
            f"data disk{merged_note}",
            "a disk is either a system disk (upgraded) or a data disk (kept by the Production "
            "side while split); remove it from one of the two lists",
        )
    return UpgradeConfig(
        description=layer.description or "",
        system_disks=layer.system,
        data_disks=layer.data,
        critical_services=layer.critical_services,
        event_logs=layer.event_logs,
        upgrade_ip=layer.upgrade_ip,
        team=layer.team,
        custom_actions=tuple(action for action, _label in layer.actions),
        remote_user=layer.remote_user,
        password_env=layer.password_env,
        source=source,
        includes=includes,
    )
