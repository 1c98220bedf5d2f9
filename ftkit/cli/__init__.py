"""The ``ftkit`` command: simulated systems, status, readiness check, runbooks, reports.

::

    ftkit sim create lab1 [--scenario demo] [--seed 0] [--time-scale 0]
    ftkit sim list | scenarios | faults
    ftkit sim fault lab1 module-fail --at merge --side production [--target T] [--times N]
    ftkit sim clear lab1 [FAULT]          # disarm armed faults
    ftkit sim repair lab1 [WHAT]          # "all", a module id or a disk name
    ftkit sim remove lab1
    ftkit status sim://lab1 [--json]
    ftkit check sim://lab1 --config upgrade.toml --package pkg.toml ... [--require-staged] [--json]
    ftkit run active-upgrade -p system sim://lab1 -p mode auto ...
    ftkit reports list [--json] | verify | add NOTEBOOK [--runbook NAME] [-p NAME VALUE]

A NAME or TARGET without ``SCHEME://`` means ``sim://NAME``.

Three modules: :mod:`~ftkit.cli.parser` (the arguments and their help),
:mod:`~ftkit.cli.commands` (what each subcommand does) and :mod:`~ftkit.cli.render` (the
text it prints); :mod:`~ftkit.cli.codes` holds the exit statuses.

Exit status: 0 success; 1 a step, check, run or verification failed; 2 bad input (a
usage error, an unknown name, a malformed file) — and bad input changes nothing.  Every
:class:`~ftkit.errors.FtkitError` becomes one line ``ftkit: <message>`` on stderr, never
a traceback.

Start-up stays fast: the package imports only the standard library and ftkit's light
modules; ``status`` and ``sim`` never import pandas, nbformat, nbconvert, papermill,
IPython or ipywidgets (``check``, ``run`` and ``reports add`` do, lazily).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ftkit.cli.codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, exit_code
from ftkit.errors import FtkitError
from ftkit.preflight import visible

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ftkit`` command; returns the exit status (never raises an FtkitError)."""
    from ftkit.cli.parser import build_parser

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        code = int(args.func(args))
        sys.stdout.flush()
        return code
    except FtkitError as err:
        print(f"ftkit: {visible(err)}", file=sys.stderr)
        return exit_code(err)
    except BrokenPipeError:  # `ftkit status … | head`: the reader left; say nothing
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except OSError as err:
        where = f": {err.filename}" if err.filename else ""
        print(visible(f"ftkit: {err.strerror or err}{where}"), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("ftkit: interrupted", file=sys.stderr)
        return 130
