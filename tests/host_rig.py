"""Test rig for the host driver: fresh example sites with unique ports, addresses and
namespaces, and the example's load client. Used by tests/test_host*.py, the contract suite
and benchmarks/bench_host.py.

A site is made from one virtual environment per process (orderdesk 1.0.0 installed,
built once, copied for every site); :func:`host_skip_reason` says why the host tests cannot
run here (not root, no ``ip netns``), so they skip with that reason.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "host"
PACKAGE = EXAMPLE / "packages" / "orderdesk-2.0.toml"
CONFIG = EXAMPLE / "config.toml"

_TEMPLATE: Path | None = None


def host_skip_reason() -> str | None:
    """Why the host driver cannot run here, or None."""
    if not sys.platform.startswith("linux"):
        return "the host driver needs Linux"
    from ftkit.host.driver import prerequisites

    missing = prerequisites()
    return f"the host driver needs {'; '.join(missing)}" if missing else None


def _template() -> Path:
    """A venv with orderdesk 1.0.0 and the staged wheels, made once per process."""
    global _TEMPLATE
    if _TEMPLATE is None:
        folder = Path(tempfile.mkdtemp(prefix="ftkit-host-template-"))
        atexit.register(shutil.rmtree, folder, True)
        site = write_site(folder)
        subprocess.run([sys.executable, str(EXAMPLE / "prepare.py"), str(site)], check=True,
                       capture_output=True)
        _TEMPLATE = folder
    return _TEMPLATE


def _free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _free_network() -> ipaddress.IPv4Network:
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True,
                            check=False).stdout
    for _ in range(100):
        net = ipaddress.IPv4Network(f"10.{random.randint(200, 254)}.{random.randint(0, 255)}.0/24")
        if str(net) not in routes:
            return net
    raise RuntimeError("no free 10.x network for the Upgrade side")


def write_site(folder: Path, *, command: Sequence[str] | None = None,
               start_timeout_s: float = 10, stop_timeout_s: float = 5) -> Path:
    """Write FOLDER/site.toml with unique ports and upgrade-side network; returns it."""
    front, port0, port1 = _free_ports(3)
    net = _free_network()
    upgrade_ip = net.network_address + 2
    argv = list(command or ["{python}", "-m", "orderdesk", "--port", "{port}",
                            "--data", "{data}"])
    folder.mkdir(parents=True, exist_ok=True)
    site = folder / "site.toml"
    site.write_text(f"""name = "orderdesk-test"
state = "run/state"

[service]
name = "orderdesk"
command = {json.dumps(argv)}
health = "/health"
ports = [{port0}, {port1}]
start_timeout_s = {start_timeout_s}
stop_timeout_s = {stop_timeout_s}

[tree]
path = "run/tree"

[data]
path = "run/data"

[network]
production = "127.0.0.1:{front}"
upgrade_ip = "{upgrade_ip}"
prefix = 24

[packages]
staging = "run/updates"

[workload]
ledger = "run/acks.db"
database = "orders.db"
query = "SELECT txn FROM orders"
""")
    return site


def make_site(folder: Path, **options: object) -> Path:
    """A fresh site in FOLDER: orderdesk 1.0.0 installed, 1.0.0 and 2.0.0 staged."""
    template = _template() / "run"
    site = write_site(folder, **options)  # type: ignore[arg-type]
    run = folder / "run"
    run.mkdir(exist_ok=True)
    for part in ("tree", "updates"):
        subprocess.run(["cp", "-a", "--reflink=auto", str(template / part), str(run / part)],
                       check=True)
    (run / "data").mkdir()
    return site


def package(version: str = "2.0.0") -> dict[str, object]:
    """The update package manifest of orderdesk VERSION, as the driver receives it."""
    import tomllib

    data = tomllib.loads(PACKAGE.read_text().replace("2.0.0", version))
    return data | {"digest": f"test-{version}", "timeout_min": 5}


class Load:
    """The example's load client running against a site; stop() returns its summary."""

    def __init__(self, site: Path, *, rate: float = 20.0) -> None:
        self.site = site
        self.process = subprocess.Popen(
            [sys.executable, str(EXAMPLE / "load.py"), str(site), "--rate", str(rate)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_for_acks(self, driver: object, count: int = 3, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while driver.acknowledged() < count:  # type: ignore[attr-defined]
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"the load client acknowledged nothing: "
                                   f"{self.process.stderr.read() if self.process.stderr else ''}")
            time.sleep(0.05)

    def stop(self) -> dict[str, float]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=120)
        lines = out.strip().splitlines()
        if not lines:
            raise RuntimeError(f"the load client printed no summary: {err}")
        summary: dict[str, float] = json.loads(lines[-1])
        return summary


@contextlib.contextmanager
def host_site(folder: Path | None = None, **options: object) -> Iterator[tuple[Path, object]]:
    """A site brought up in FOLDER (a temporary one if None) and torn down afterwards,
    whatever happens: services, front, agent, namespace and files."""
    from ftkit.drivers import connect
    from ftkit.host.driver import HostDriver, prerequisites
    from ftkit.host.site import load_site

    own = folder is None
    folder = folder or Path(tempfile.mkdtemp(prefix="ftkit-host-"))
    site = make_site(folder, **options)
    try:
        assert not prerequisites()
        HostDriver(f"host://{site}", load_site(site)).bring_up()
        driver = connect(f"host://{site}")
        yield site, driver
    finally:
        HostDriver(f"host://{site}", load_site(site)).teardown()
        if own:
            shutil.rmtree(folder, ignore_errors=True)


def kill_tree(pid: int) -> None:
    """SIGKILL PID and every process below it (a controller and its kernel)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(children.get(p, []))
    for p in seen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
