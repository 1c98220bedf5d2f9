"""``python -m ftkit.host up|down|fault|disarm SITE``: bring a host site up or down, arm
faults for a drill. (``ftkit status host:///…`` and ``ftkit run`` do everything else.)"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ftkit.errors import FtkitError, TargetError
from ftkit.host.driver import FAULTS, HostDriver, open_host, prerequisites
from ftkit.host.site import load_site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ftkit.host", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("up", "start the front and the service (first use: mirror the "
                              "trees)"),
                       ("down", "stop everything the driver started and forget its state")):
        sub.add_parser(name, help=text).add_argument("site", type=Path)
    fault = sub.add_parser("fault", help="arm a fault for a drill")
    fault.add_argument("site", type=Path)
    fault.add_argument("name", choices=sorted(FAULTS))
    fault.add_argument("--at", dest="point", help="where it fires (default: its first point)")
    fault.add_argument("--times", type=int, default=1)
    disarm = sub.add_parser("disarm", help="remove armed faults")
    disarm.add_argument("site", type=Path)
    disarm.add_argument("name", nargs="?")
    args = parser.parse_args(argv)
    site_file = args.site.resolve()
    target = f"host://{site_file}"
    try:
        if args.command == "down":
            HostDriver(target, load_site(site_file)).teardown()
            print(f"{target}: down")
            return 0
        if args.command == "up":
            missing = prerequisites()
            if missing:
                raise TargetError(f"the host driver cannot work here: it needs "
                                  f"{'; '.join(missing)}", "run as root (make host-deps)")
            HostDriver(target, load_site(site_file)).bring_up()
        driver = open_host(target, str(site_file))
        if args.command == "up":
            st = driver.status()
            print(f"{target}: up, {st.services and ', '.join(st.services)} on enclosure "
                  f"{st.apps_on}, clients at {driver.site.production_host}:"
                  f"{driver.site.production_port}")
        elif args.command == "fault":
            record = driver.inject(args.name, point=args.point, times=args.times)
            print(f"armed {record['name']} at {record['point']} ({record['times']}x)")
        else:
            cleared = driver.disarm(args.name)
            print(f"disarmed {len(cleared)} fault(s)")
    except FtkitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
