"""The site file of a ``host://`` target: what runs where on one Linux host.

A site is a TOML file; relative paths are relative to the file::

    name = "orderdesk-demo"
    state = "run/state"                  # the driver's own state folder

    [service]                            # the critical application
    name = "orderdesk"
    command = ["{python}", "-m", "orderdesk", "--port", "{port}", "--data", "{data}"]
    health = "/health"                   # GET path answering 200 when the service is up
    ports = [8471, 8472]                 # backend port of enclosure 0 and of enclosure 1
    start_timeout_s = 20
    stop_timeout_s = 10

    [tree]                               # the system tree: a virtual environment
    path = "run/tree"

    [data]                               # the data directory
    path = "run/data"

    [network]
    production = "127.0.0.1:8470"        # the front: where clients reach the service
    upgrade_ip = "10.213.0.2"            # the Upgrade side's address while split
    prefix = 24                          # its network (a veth pair; the host end is .1)

    [packages]
    staging = "run/updates"              # update wheels are staged here before the split

    [workload]                           # where the load client records acknowledgements
    ledger = "run/acks.db"
    database = "orders.db"               # the service's database, in the data directory
    query = "SELECT txn FROM orders"     # the transaction ids it holds

``command`` placeholders: ``{python}`` (the tree's interpreter), ``{tree}``, ``{port}``,
``{data}``. Loading reads the file only, with the configurations' bounded reader
(:func:`ftkit.tomlreader.read_file`: a regular file of at most 1 MiB); nothing on the host
changes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftkit.errors import ConfigError, TargetError
from ftkit.tomlreader import decode, parse_toml, read_file

__all__ = ["Site", "load_site"]

_PLACEHOLDERS = ("{python}", "{tree}", "{port}", "{data}")


@dataclass(frozen=True)
class Site:
    """A loaded site file (read-only); every path is absolute."""

    file: Path
    name: str
    state_dir: Path
    service: str
    command: tuple[str, ...]
    health: str
    ports: tuple[int, int]
    start_timeout_s: float
    stop_timeout_s: float
    tree: Path
    data: Path
    production_host: str
    production_port: int
    upgrade_ip: ipaddress.IPv4Address
    prefix: int
    staging: Path
    ledger: Path
    database: str
    query: str

    def tree_of(self, enclosure: int) -> Path:
        """The system tree of an enclosure: the site's tree (0) or its partner copy (1)."""
        return self.tree if enclosure == 0 else self.tree.with_name(self.tree.name + ".1")

    @property
    def host_ip(self) -> ipaddress.IPv4Address:
        """The host's end of the veth pair: the first address of the upgrade-side network."""
        network = ipaddress.IPv4Network(f"{self.upgrade_ip}/{self.prefix}", strict=False)
        first = next(network.hosts())
        return first if first != self.upgrade_ip else first + 1

    @property
    def network(self) -> str:
        return str(ipaddress.ip_network(f"{self.upgrade_ip}/{self.prefix}", strict=False))


def _get(table: dict[str, Any], key: str, kind: type, file: Path, where: str,
         default: Any = None) -> Any:
    value = table.get(key, default)
    if value is None:
        raise ConfigError(f"{file}: [{where}] {key} is missing", f"set {key} in [{where}]")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{file}: [{where}] {key} = {value!r} is not a {kind.__name__}",
                          f"write {key} as a {kind.__name__}")
    return value


def load_site(path: str | Path) -> Site:
    """Read a site file; a missing or malformed one is a TargetError / ConfigError."""
    file = Path(path)
    if not file.is_absolute():
        raise TargetError(f"host target path {path!r} is not absolute",
                          "write host:///abs/path/site.toml")
    if not file.exists() and not file.is_symlink():
        raise TargetError(f"no site file {file}",
                          "write one (see examples/host/site.toml) or correct the target")
    # the configurations' bounded reader: a FIFO, a device (/dev/zero) or a folder is
    # refused from os.stat before it is opened, and at most MAX_BYTES are read
    label = f"site file {file}"
    raw = parse_toml(decode(read_file(file, label, TargetError), label, ConfigError),
                     label, ConfigError)
    base = file.parent

    def table(name: str) -> dict[str, Any]:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{file}: {name} must be a table", f"write [{name}]")
        return value

    def where(value: str) -> Path:
        return (base / value).resolve()

    service, tree, data = table("service"), table("tree"), table("data")
    network, packages, workload = table("network"), table("packages"), table("workload")
    command = _get(service, "command", list, file, "service")
    if not command or not all(isinstance(c, str) for c in command):
        raise ConfigError(f"{file}: [service] command must be a list of strings",
                          'write command = ["{python}", "-m", "app", "--port", "{port}"]')
    if not any("{port}" in c for c in command):
        raise ConfigError(f"{file}: [service] command never names {{port}}",
                          "the service must listen on the port ftkit gives it")
    ports = _get(service, "ports", list, file, "service")
    if len(ports) != 2 or not all(isinstance(p, int) and 0 < p < 65536 for p in ports):
        raise ConfigError(f"{file}: [service] ports = {ports!r} needs two port numbers",
                          "one backend port per enclosure, e.g. ports = [8471, 8472]")
    production = _get(network, "production", str, file, "network")
    host, _, port = production.rpartition(":")
    try:
        upgrade_ip = ipaddress.IPv4Address(_get(network, "upgrade_ip", str, file, "network"))
        ipaddress.IPv4Address(host)
        production_port = int(port)
    except ValueError as exc:
        raise ConfigError(f"{file}: [network]: {exc}",
                          'write production = "127.0.0.1:8470" and an IPv4 upgrade_ip'
                          ) from None
    prefix = _get(network, "prefix", int, file, "network", 24)
    if not 8 <= prefix <= 30:
        raise ConfigError(f"{file}: [network] prefix = {prefix} is out of range",
                          "use 8 to 30")
    if production_port in ports:
        raise ConfigError(f"{file}: the production port {production_port} is also a "
                          "backend port", "give the front and the backends distinct ports")
    return Site(
        file=file,
        name=_get(raw, "name", str, file, "top level", file.parent.name),
        state_dir=where(_get(raw, "state", str, file, "top level", "state")),
        service=_get(service, "name", str, file, "service"),
        command=tuple(command),
        health=_get(service, "health", str, file, "service", "/health"),
        ports=(ports[0], ports[1]),
        start_timeout_s=_get(service, "start_timeout_s", float, file, "service", 20.0),
        stop_timeout_s=_get(service, "stop_timeout_s", float, file, "service", 10.0),
        tree=where(_get(tree, "path", str, file, "tree")),
        data=where(_get(data, "path", str, file, "data")),
        production_host=host,
        production_port=production_port,
        upgrade_ip=upgrade_ip,
        prefix=prefix,
        staging=where(_get(packages, "staging", str, file, "packages")),
        ledger=where(_get(workload, "ledger", str, file, "workload")),
        database=_get(workload, "database", str, file, "workload"),
        query=_get(workload, "query", str, file, "workload"),
    )
