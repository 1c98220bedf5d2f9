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
    timeout_s = 60                       # (0, 86400]
    args = ["--quiet"]                   # never a secret: name it in secret_env
    env = ["ORACLE_HOME"]                # variables passed through to the action
    secret_env = ["DB_PASSWORD"]         # passed through too, their values masked

    [remote]
    user = "upgrade-admin"
    password_env = "FTKIT_UPGRADE_PASSWORD"   # the variable's name, never the secret

    [window]                             # change controls: ftkit/window.py
    start = "2026-12-05T22:00:00+01:00"
    end = "2026-12-06T02:00:00+01:00"
    max_outage_s = 60

Children are merged first, in the order listed; the including file then overrides their
scalars and extends their lists without duplicates. A file included twice is read once;
includes nest at most :data:`MAX_INCLUDE_DEPTH` deep and name at most :data:`MAX_INCLUDES`
files; every file is a regular file of at most 1 MiB (:mod:`ftkit.tomlreader`).

A custom action sees only what it declares: the ``ACTIVE_UPGRADE_*`` variables, ``PATH``,
its ``env`` and its ``secret_env``, whose values (and ``[remote] password_env``'s) are
masked in everything captured (:attr:`UpgradeConfig.secret_env`,
:func:`ftkit.redact.mask_env`). A secret is never written here: an action's ``args``, or
the value of a variable its ``env`` passes, holding the value of a declared secret (in any
form :func:`ftkit.redact.scrub` masks: literal, base64, hex, URL-encoded) is refused at
load; so is a secret-looking key or argument (``password = ...``, ``args = ["--password",
"..."]``), for a secret the configuration does not declare.

Only what the file alone can tell is checked here; whether the named disks and services
exist on a system is the readiness check's business. Every problem raises one
:class:`~ftkit.errors.ConfigError` naming the file, the key and what to write instead.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftkit.errors import ConfigError
from ftkit.flow import ACTION_REQUESTS
from ftkit.redact import MIN_INFERRED_SECRET, register_secret, secret_in
from ftkit.tomlreader import Reader, decode, join, parse_toml, read_file, shown, type_name
from ftkit.window import Controls, read_controls

__all__ = [
    "MAX_INCLUDES",
    "MAX_INCLUDE_DEPTH",
    "MAX_TIMEOUT_S",
    "REQUESTS",
    "SIDES",
    "WHEN",
    "CustomAction",
    "IPAddress",
    "UpgradeConfig",
    "load_config",
    "load_config_text",
]

#: Requests a custom action can be attached to (the vendor's ``ACTIVE_UPGRADE_REQUEST``),
#: as :data:`ftkit.flow.ACTION_REQUESTS` declares them.
REQUESTS: tuple[str, ...] = tuple(request.value for request in ACTION_REQUESTS)
#: Where a custom action runs; ``Both`` runs it on the Production side and the Upgrade side.
SIDES: tuple[str, ...] = ("Production", "Upgrade", "Both")
#: When a custom action runs relative to its request.
WHEN: tuple[str, ...] = ("before", "after")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_TIMEOUT_S = 300.0
#: The longest a custom action may run (one day), in seconds.
MAX_TIMEOUT_S = 86400.0
#: How deep includes may nest (a file including a file including ...).
MAX_INCLUDE_DEPTH = 16
#: How many different files one configuration may include, directly or not.
MAX_INCLUDES = 64
_PASSWORD_ENV_EXAMPLE = 'password_env = "FTKIT_UPGRADE_PASSWORD"'
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_WORDS = frozenset({"password", "passwd", "secret", "token"})
# The second net, for a secret the configuration does not declare (the first refuses the
# value of any declared one, :func:`_refuse_declared_secrets`): ``password=VALUE``, and
# ``--password VALUE``, a flag one of whose words names a secret followed by its value.
_SECRET_ARG = re.compile(r"(password|passwd|secret|token|(?<![a-z])(?:pass|pwd|passphrase))"
                         r"\s*[=:]", re.IGNORECASE)
_SECRET_FLAG = re.compile(r"-{1,2}[A-Za-z0-9][A-Za-z0-9_-]*")
_FLAG_SECRET_ENDINGS = ("password", "passwd", "secret", "token")  # dbpassword, authtoken
_FLAG_SECRET_WORDS = frozenset({"pass", "pwd", "passphrase", "apikey"})
# a flag whose last word is one of these names where the secret is, not the secret itself
_REFERENCE_WORDS = frozenset({"env", "file", "stdin", "var", "path", "name"})
# keys that name where a secret is, never the secret itself
_REFERENCE_KEYS = frozenset({"password_env", "secret_env"})

_TOP_KEYS = (
    "description",
    "include",
    "disks",
    "critical_services",
    "event_logs",
    "network",
    "custom_actions",
    "remote",
    "window",
    # change controls (README "Change controls"): ftkit/approvals.py, probes.py, notify.py
    "approvals",
    "notify",
    "probe_url",
    "probe_every_s",
)
_APPROVAL_KEYS = ("commit",)
#: The most approvals Commit may require.
MAX_APPROVALS = 9
#: The longest pause between two soak probes (one hour), in seconds.
MAX_PROBE_EVERY_S = 3600.0
#: The longest an auto run waits for an approval (one day), in minutes.
MAX_DECISION_TIMEOUT_MIN = 1440.0
_DISK_KEYS = ("system", "data")
_NETWORK_KEYS = ("upgrade_ip", "team")
_REMOTE_KEYS = ("user", "password_env")
_ACTION_KEYS = (
    "name", "path", "when", "request", "side", "timeout_s", "args", "env", "secret_env",
    "kind",
)
#: What a custom action is: run before/after a request, or a health probe of the soak.
KINDS: tuple[str, ...] = ("action", "probe")
# ${NAME} in a notify URL: the value of environment variable NAME (a secret, masked)
_SECRET_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


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
    env: tuple[str, ...] = ()
    secret_env: tuple[str, ...] = ()
    kind: str = "action"  # "probe": run every probe_every_s during the soak (ftkit/probes.py)

    def runs_on(self, side: str) -> bool:
        """True if the action runs on ``side`` (``"Production"`` or ``"Upgrade"``)."""
        return self.side in (side, "Both")

    def environment(
        self, base: Mapping[str, str], *, environ: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The whole environment of one run of the action (read-only): ``PATH`` and the
        declared ``env`` and ``secret_env`` variables from ``environ`` (default
        ``os.environ``), then ``base`` (the ``ACTIVE_UPGRADE_*`` variables) over them.
        Nothing else of the caller's environment. A declared ``env`` variable that is
        not set is left out; an unset ``secret_env`` variable is a :class:`ConfigError`.
        """
        source = os.environ if environ is None else environ
        out = {name: source[name] for name in ("PATH", *self.env) if name in source}
        for name in self.secret_env:
            if name not in source:
                raise ConfigError(
                    f"environment variable {name} is not set (named by secret_env of "
                    f"custom action {self.name})",
                    f"set {name} in the environment that runs ftkit",
                )
            out[name] = source[name]
        out.update(base)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; ``env`` and ``secret_env`` (names only) when declared."""
        data: dict[str, Any] = {
            "name": self.name,
            "path": str(self.path),
            "when": self.when,
            "request": self.request,
            "side": self.side,
            "timeout_s": self.timeout_s,
            "args": list(self.args),
        }
        if self.env:
            data["env"] = list(self.env)
        if self.secret_env:
            data["secret_env"] = list(self.secret_env)
        if self.kind != "action":
            data["kind"] = self.kind
        return data


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
    controls: Controls = field(default_factory=Controls)  # [window]: ftkit/window.py
    # change controls: None = not said (each reader has its default)
    approvals_commit: int | None = None
    notify: tuple[str, ...] = ()
    probe_url: str | None = None
    probe_every_s: float | None = None

    def _content(self) -> dict[str, Any]:
        window = {"window": self.controls.to_dict()} if self.controls.said else {}
        return {**window,
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
            **self._controls(),
        }

    def _controls(self) -> dict[str, Any]:
        """The change controls said (only those: a configuration without them keeps its
        digest)."""
        data: dict[str, Any] = {}
        if self.approvals_commit is not None:
            data["approvals"] = {"commit": self.approvals_commit}
        for key in ("notify", "probe_url", "probe_every_s"):
            value = getattr(self, key)
            if value not in (None, ()):
                data[key] = list(value) if isinstance(value, tuple) else value
        return data

    @property
    def probes(self) -> tuple[CustomAction, ...]:
        """The custom actions of kind ``probe`` (run during the soak), in order."""
        return tuple(a for a in self.custom_actions if a.kind == "probe")

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
            if action.kind == "action" and action.request == request and action.when == when
            and action.runs_on(side)
        )

    @property
    def secret_env(self) -> tuple[str, ...]:
        """Every environment variable whose value is a secret: ``[remote] password_env``
        and each custom action's ``secret_env``, once each. Their values are masked in
        anything captured (:func:`ftkit.redact.mask_env`)."""
        names = [] if self.password_env is None else [self.password_env]
        names += [name for action in self.custom_actions for name in action.secret_env]
        names += [name for url in self.notify for name in _SECRET_REF.findall(url)]
        return tuple(dict.fromkeys(names))

    def remote_password(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The upgrade-side password from the environment variable named by
        ``password_env``; ``None`` when the configuration names none. The value is
        registered with :func:`ftkit.redact.register_secret`, so the journal and the
        reports mask it wherever it shows.

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
        register_secret(value)
        return value


def load_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> UpgradeConfig:
    """Load, merge (includes first) and validate the upgrade configuration at ``path``.

    Read-only. Raises :class:`ConfigError` naming the file, key and fix; among them a
    custom action whose ``args`` (or the value of a variable in its ``env``) hold the
    value of a declared secret, read from ``environ`` (default ``os.environ``).
    """
    label = shown(str(path))
    file = Path(path)
    text = decode(read_file(file, label, ConfigError), label, ConfigError)
    resolved = file.resolve()
    loader = _Loader()
    layer = loader.load(text, label=label, base_dir=resolved.parent, stack=((resolved, label),))
    return _finish(layer, source=resolved, includes=tuple(loader.includes), environ=environ)


def load_config_text(
    text: str, *, base_dir: str | Path, environ: Mapping[str, str] | None = None
) -> UpgradeConfig:
    """Like :func:`load_config` for TOML text; includes and action paths are relative
    to ``base_dir``. ``source`` is ``None``."""
    loader = _Loader()
    layer = loader.load(text, label="<config text>", base_dir=Path(base_dir).resolve(), stack=())
    return _finish(layer, source=None, includes=tuple(loader.includes), environ=environ)


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
    controls: Controls = field(default_factory=Controls)  # what [window] says
    approvals_commit: int | None = None
    notify: tuple[str, ...] = ()
    probe_url: str | None = None
    probe_every_s: float | None = None


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
        controls=base.controls.merged(over.controls),
        notify=_extend(base.notify, over.notify),
        **{key: getattr(over, key) if getattr(over, key) is not None else getattr(base, key)
           for key in ("approvals_commit", "probe_url", "probe_every_s")},
    )


def _find_secret(value: Any, where: str) -> str | None:
    """The key path of the first key that looks like it holds a secret, if any."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = join(where, key)
            words = set(re.split(r"[_\-.\s]+", key.lower()))
            if key not in _REFERENCE_KEYS and words & _SECRET_WORDS:
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
    r = Reader(label, ConfigError, _TOP_KEYS)
    r.known(raw, _TOP_KEYS)
    layer = _Layer(label=label)
    layer.description = r.text(raw, "description", "", 'description = "Monthly patch window"')

    includes = r.names(raw, "include", "", 'include = ["base.toml"]') or ()
    for index, name in enumerate(includes):
        _check_path(r, f"include[{index}]", name, 'include = ["base.toml"]')
    layer.include = tuple((shown(str(base_dir / name)), base_dir / name) for name in includes)

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
    layer.controls = read_controls(r, raw)
    _read_controls(r, raw, layer)
    return layer


def _read_controls(r: Reader, raw: dict[str, Any], layer: _Layer) -> None:
    """The change controls (README "Change controls"): ``[approvals] commit``, ``notify``,
    ``probe_url``, ``probe_every_s`` (the decision timeout is the window's:
    :mod:`ftkit.window`); read-only."""
    approvals = r.table(raw, "approvals", "", _APPROVAL_KEYS, "[approvals] commit = 1")
    if approvals is not None:
        count = _zero_or_number(r, approvals, "commit", "approvals", "commit = 1",
                                high=MAX_APPROVALS, unit="approvals")
        if count is not None:
            if count != int(count):
                r.fail("approvals.commit", f"{count:g} is not a whole number",
                       "write commit = 0, 1 or 2 (approvals from other accounts)")
            layer.approvals_commit = int(count)
    urls = r.names(raw, "notify", "", 'notify = ["json://host:8080/hook"]') or ()
    for index, url in enumerate(urls):
        scheme, sep, rest = url.partition("://")
        if not sep or not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
            r.fail(f"notify[{index}]", f"{url!r} is not an apprise URL",
                   'write scheme://…, e.g. notify = ["json://ops.example:8080/hook"]')
        creds = rest.partition("/")[0].rpartition("@")[0]
        secret = creds.partition(":")[2]
        if secret and not _SECRET_REF.fullmatch(secret):
            r.fail(f"notify[{index}]", "a password must not be written in the configuration",
                   "name the environment variable that holds it: "
                   '"mailto://user:${SMTP_PASSWORD}@mail.example" (its value is masked)')
    layer.notify = tuple(urls)
    probe_url = r.text(raw, "probe_url", "", 'probe_url = "http://app.example:8080/health"')
    if probe_url is not None and not re.fullmatch(r"https?://[^\s]+", probe_url):
        r.fail("probe_url", f"{probe_url!r} is not an http(s) URL",
               'write probe_url = "http://app.example:8080/health" (expects 2xx)')
    layer.probe_url = probe_url
    layer.probe_every_s = r.number(raw, "probe_every_s", "", "probe_every_s = 30", low=0,
                                   high=MAX_PROBE_EVERY_S, unit="seconds")


def _zero_or_number(r: Reader, table: Mapping[str, Any], key: str, where: str, example: str,
                    *, high: float, unit: str) -> float | None:
    """0, or a number in (0, HIGH] as :meth:`Reader.number` reads it; None when absent."""
    value = table.get(key)
    if value == 0 and not isinstance(value, bool):
        return 0.0
    return r.number(table, key, where, example, low=0, high=high, unit=unit)


def _check_path(r: Reader, key: str, text: str, example: str) -> None:
    if "\x00" in text:
        r.fail(key, "holds a NUL character, which no path can", f"write {example}")


def _parse_ip(r: Reader, text: str) -> IPAddress:
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


def _read_actions(r: Reader, raw: dict[str, Any], base_dir: Path) -> list[CustomAction]:
    if "custom_actions" not in raw:
        return []
    entries = raw["custom_actions"]
    example = '[[custom_actions]] name = "quiesce" (one [[custom_actions]] block per action)'
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        r.fail(
            "custom_actions",
            f"expected an array of tables, got {type_name(entries)}",
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
        assert path is not None
        _check_path(r, f"{where}.path", path, 'path = "actions/quiesce.sh"')
        kind = r.choice(entry, "kind", where, KINDS) or "action"
        probe = kind == "probe"  # run during the soak: no request, no moment
        when = r.choice(entry, "when", where, WHEN, required=not probe) or ""
        request = r.choice(entry, "request", where, REQUESTS, required=not probe) or ""
        side = r.choice(entry, "side", where, SIDES) or "Production"
        timeout = r.number(entry, "timeout_s", where, "timeout_s = 300",
                           low=0, high=MAX_TIMEOUT_S, unit="seconds")
        args = r.names(entry, "args", where, 'args = ["--quiet"]') or ()
        secret_arg = _secret_arg(args)
        if secret_arg is not None:
            r.fail(
                f"{where}.args[{secret_arg}]",
                "a secret must not be written in the configuration",
                'name the environment variable that holds it, secret_env = ["DB_PASSWORD"], '
                "and let the action read it from there (its value is then masked)",
            )
        env = _env_names(r, entry, "env", where, 'env = ["ORACLE_HOME"]')
        secret_env = _env_names(r, entry, "secret_env", where, 'secret_env = ["DB_PASSWORD"]')
        for index, var in enumerate(env):  # not `name`: that is the action's
            if set(re.split(r"[_\-]+", var.lower())) & _SECRET_WORDS:
                r.fail(f"{where}.env[{index}]", f"{var} looks like a secret",
                       f'list it under secret_env = ["{var}"] so that its value is masked')
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
                env=env,
                secret_env=secret_env,
                kind=kind,
            )
        )
    return actions


def _secret_arg(args: Sequence[str]) -> int | None:
    """The index of the first argument that writes a secret literal, if any:
    ``password=VALUE``, or the value after a flag such as ``--db-password``. Not a flag
    named by its words only in part (``--tokenizer``, ``--secretary``), a negated one
    (``--no-password``), one naming where the secret is (``--password-file``), nor a
    flag followed by another flag (``--password --quiet``: it takes no value)."""
    for index, arg in enumerate(args):
        if _SECRET_ARG.search(arg):
            return index
        if _SECRET_FLAG.fullmatch(arg) and index + 1 < len(args):
            words = re.split(r"[_-]+", arg.strip("-").lower())
            secret = any(word.endswith(_FLAG_SECRET_ENDINGS) or word in _FLAG_SECRET_WORDS
                         for word in words)
            if (secret and words[-1] not in _REFERENCE_WORDS and words[0] != "no"
                    and not args[index + 1].startswith("-")):
                return index + 1
    return None


def _env_names(
    r: Reader, entry: Mapping[str, Any], key: str, where: str, example: str
) -> tuple[str, ...]:
    """A list of environment variable names; ftkit's own ``ACTIVE_UPGRADE_*`` are refused."""
    names = r.names(entry, key, where, example) or ()
    for index, name in enumerate(names):
        if not _ENV_NAME.fullmatch(name):
            r.fail(f"{where}.{key}[{index}]", f"{name!r} is not an environment variable name",
                   f"write {example}")
        if name.upper().startswith("ACTIVE_UPGRADE_"):
            r.fail(f"{where}.{key}[{index}]", f"{name} is set by ftkit for every action",
                   f"leave it out: ftkit sets the ACTIVE_UPGRADE_* variables itself; {example}")
    return names


def _refuse_declared_secrets(layer: _Layer, environ: Mapping[str, str]) -> None:
    """Refuse a custom action whose ``args``, or the value of a variable its ``env``
    passes, hold the value of a declared secret (any action's ``secret_env``, ``[remote]
    password_env``) in any form :func:`ftkit.redact.scrub` masks: it would reach the
    action's command line or an unmasked variable. Read-only."""
    names = [] if layer.password_env is None else [layer.password_env]
    names += [name for action, _label in layer.actions for name in action.secret_env]
    secrets: dict[str, str] = {}  # value -> the first variable that declares it
    for name in names:
        if environ.get(name):
            secrets.setdefault(environ[name], name)
    if not secrets:
        return
    for action, label in layer.actions:
        found = [(f"args[{index}]", _declared_secret_in(arg, secrets))
                 for index, arg in enumerate(action.args)]
        found += [(f"env[{index}] ({name}'s value)", _declared_secret_in(environ[name], secrets))
                  for index, name in enumerate(action.env)
                  if name in environ and name not in names]
        for where, secret in found:
            if secret is not None:
                raise ConfigError(
                    f"{label}: custom action {action.name}: {where} holds the value of "
                    f"{secrets[secret]}, a declared secret",
                    f'pass it through secret_env = ["{secrets[secret]}"]: the action reads '
                    "it from its environment, and its value is masked in all it prints")


def _declared_secret_in(text: str, secrets: Mapping[str, str]) -> str | None:
    """The secret of SECRETS that TEXT holds in any form; one shorter than
    :data:`ftkit.redact.MIN_INFERRED_SECRET` only when it is the whole text or the whole
    value after ``=`` (else ``-v`` would be refused for a one-letter password)."""
    short = [s for s in secrets if len(s) < MIN_INFERRED_SECRET]
    for secret in short:
        if secret in (text, text.partition("=")[2]):
            return secret
    return secret_in(text, [s for s in secrets if len(s) >= MIN_INFERRED_SECRET])


class _Loader:
    """Loads one configuration tree, remembering every included file.

    A file included more than once (a diamond) is read and validated once; includes nest
    at most :data:`MAX_INCLUDE_DEPTH` deep, name at most :data:`MAX_INCLUDES` files, and
    a cycle is refused.
    """

    def __init__(self) -> None:
        self.includes: list[Path] = []
        self._loaded: dict[Path, _Layer] = {}

    def load(
        self,
        text: str,
        *,
        label: str,
        base_dir: Path,
        stack: tuple[tuple[Path, str], ...],
        depth: int = 0,
    ) -> _Layer:
        """The merged layer of ``text`` and its includes; ``depth`` counts the includes
        that led to it (0 for the file named by the operator)."""
        own = _read_layer(parse_toml(text, label, ConfigError), label, base_dir)
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
            child = self._loaded.get(resolved)
            if child is None:
                child = self._load_child(
                    child_label, child_path, resolved, label, base_dir, stack, depth
                )
            merged = _merge(merged, child)
        return _merge(merged, own)

    def _load_child(
        self,
        child_label: str,
        child_path: Path,
        resolved: Path,
        label: str,
        base_dir: Path,
        stack: tuple[tuple[Path, str], ...],
        depth: int,
    ) -> _Layer:
        if depth >= MAX_INCLUDE_DEPTH:
            raise ConfigError(
                f"{label}: include: {child_label}: includes nest more than "
                f"{MAX_INCLUDE_DEPTH} deep",
                "include the shared files from one top-level configuration instead of "
                "chaining them",
            )
        if len(self.includes) >= MAX_INCLUDES:
            raise ConfigError(
                f"{label}: include: {child_label}: more than {MAX_INCLUDES} files included",
                "merge the small files into fewer ones",
            )
        if not child_path.exists():
            raise ConfigError(
                f"{label}: include: {child_label}: file not found",
                f"include paths are relative to the including file ({base_dir}); "
                "fix the path or create the file",
            )
        child_text = decode(read_file(child_path, child_label, ConfigError), child_label,
                            ConfigError)
        self.includes.append(resolved)
        child = self.load(
            child_text,
            label=child_label,
            base_dir=resolved.parent,
            stack=(*stack, (resolved, child_label)),
            depth=depth + 1,
        )
        self._loaded[resolved] = child
        return child


def _finish(layer: _Layer, *, source: Path | None, includes: tuple[Path, ...],
            environ: Mapping[str, str] | None) -> UpgradeConfig:
    """Checks that need the whole merged configuration, then the frozen result."""
    merged_note = " (after merging its includes)" if includes else ""
    _refuse_declared_secrets(layer, os.environ if environ is None else environ)
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
        controls=layer.controls,
        approvals_commit=layer.approvals_commit,
        notify=layer.notify,
        probe_url=layer.probe_url,
        probe_every_s=layer.probe_every_s,
    )
