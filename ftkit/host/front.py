"""The front: a TCP proxy ftkit owns on the service's production address.

Clients connect to the front; it forwards each connection to the active backend (the
service of the side that runs the applications).  During a switch the driver tells it to
*hold*: new connections are accepted and wait, unforwarded, until the driver *routes* them
to the new backend — so clients see latency, not errors.  A backend that refuses a
connection is retried until ``--hold-s`` runs out, for the same reason.

Run as a daemon by the host driver (``python -m ftkit.host.front``); controlled through an
abstract Unix socket (a name, no file), one command per connection, one JSON line back::

    hold                  new connections wait
    route HOST:PORT       forward to HOST:PORT from now on, held ones included
    drain SECONDS         wait until no forwarded connection is open (or SECONDS pass)
    status                {"upstream", "holding", "held", "open", "served"}
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import time

__all__ = ["Front", "command"]


class Front:
    def __init__(self, upstream: tuple[str, int], hold_s: float) -> None:
        self.upstream = upstream
        self.hold_s = hold_s
        self.released = asyncio.Event()
        self.released.set()
        self.held = 0
        self.open = 0
        self.served = 0
        self.idle = asyncio.Event()
        self.idle.set()

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        deadline = time.monotonic() + self.hold_s
        upstream = None
        try:
            while upstream is None:
                if not self.released.is_set():
                    self.held += 1
                    try:
                        await asyncio.wait_for(self.released.wait(),
                                               max(0.0, deadline - time.monotonic()))
                    finally:
                        self.held -= 1
                try:
                    upstream = await asyncio.open_connection(*self.upstream)
                except OSError:
                    if time.monotonic() >= deadline:
                        return
                    await asyncio.sleep(0.02)
            self.open += 1
            self.idle.clear()
            up_reader, up_writer = upstream
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
                self.open -= 1
                self.served += 1
                if self.open == 0:
                    self.idle.set()
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()

    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            words = (await reader.readline()).decode().split()
            answer: dict[str, object] = {"ok": True}
            if words[:1] == ["hold"]:
                self.released.clear()
            elif words[:1] == ["route"] and len(words) == 2:
                host, _, port = words[1].rpartition(":")
                self.upstream = (host, int(port))
                self.released.set()
            elif words[:1] == ["drain"] and len(words) == 2:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.idle.wait(), float(words[1]))
                answer["open"] = self.open
            elif words[:1] != ["status"]:
                answer = {"ok": False, "error": f"unknown command {' '.join(words)!r}"}
            answer |= {"upstream": f"{self.upstream[0]}:{self.upstream[1]}",
                       "holding": not self.released.is_set(), "held": self.held,
                       "open": self.open, "served": self.served}
            writer.write((json.dumps(answer) + "\n").encode())
            await writer.drain()
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()


def command(name: str, line: str, *, timeout_s: float = 30.0) -> dict[str, object]:
    """Send one control command to the front listening on the abstract socket NAME; its
    JSON answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout_s)
        conn.connect("\0" + name)
        conn.sendall((line + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    answer: dict[str, object] = json.loads(data)
    return answer


async def _serve(listen: tuple[str, int], upstream: tuple[str, int], name: str,
                 hold_s: float) -> None:
    front = Front(upstream, hold_s)
    server = await asyncio.start_server(front.client, *listen, reuse_address=True, backlog=512)
    control = await asyncio.start_unix_server(front.control, path="\0" + name)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    print(f"front on {listen[0]}:{listen[1]} -> {upstream[0]}:{upstream[1]}", flush=True)
    async with server, control:
        await stopping.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ftkit.host.front")
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--upstream", required=True, help="HOST:PORT")
    parser.add_argument("--control", required=True, help="abstract Unix socket name")
    parser.add_argument("--hold-s", type=float, default=60.0)
    args = parser.parse_args()

    def address(text: str) -> tuple[str, int]:
        host, _, port = text.rpartition(":")
        return host, int(port)

    asyncio.run(_serve(address(args.listen), address(args.upstream), args.control, args.hold_s))


if __name__ == "__main__":
    main()
