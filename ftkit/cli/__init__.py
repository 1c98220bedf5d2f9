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
a traceback; so does a full disk (:func:`disk_full`), with the remedy.

Start-up stays fast: the package imports only the standard library and ftkit's light
modules; ``status`` and ``sim`` never import pandas, nbformat, nbconvert, papermill,
IPython or ipywidgets (``check``, ``run`` and ``reports add`` do, lazily).
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Sequence

from ftkit.cli.codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, exit_code
from ftkit.errors import FtkitError
from ftkit.preflight import visible

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "disk_full", "main"]


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
    except KeyboardInterrupt:
        print("ftkit: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a full disk anywhere below is one line; other OSErrors too
        full = disk_full(err)
        if full is not None:
            print(visible(f"ftkit: {full}"), file=sys.stderr)
            return EXIT_FAILED
        if not isinstance(err, OSError):
            raise
        where = f": {err.filename}" if err.filename else ""
        print(visible(f"ftkit: {err.strerror or err}{where}"), file=sys.stderr)
        return EXIT_FAILED


#: Free bytes below which SQLite's "disk I/O error" means the disk holding $FTKIT_HOME is
#: full (a write that found no room half way reports so).
_NEARLY_FULL = 1 << 20


def _home_free() -> int:
    import shutil

    from ftkit.home import ftkit_home

    try:
        return shutil.disk_usage(ftkit_home()).free
    except OSError:
        return _NEARLY_FULL


def disk_full(err: BaseException) -> FtkitError | None:
    """The one-line error for ERR when it, or an exception it was raised from or while
    handling, says the disk is full (``OSError`` ENOSPC or EDQUOT, SQLite's "database or
    disk is full", or its "disk I/O error" while that disk has under 1 MiB free); None
    otherwise. It names the file, else ``$FTKIT_HOME`` (where the
    systems and journals are), and says that the run resumes: every step's intent was
    journaled before it was acted on."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [err]
    while todo:
        here = todo.pop()
        if here is None or id(here) in seen:
            continue
        seen.add(id(here))
        where = None
        if isinstance(here, OSError) and here.errno in (errno.ENOSPC, errno.EDQUOT):
            where = str(here.filename) if here.filename else ""
        elif type(here).__module__ == "sqlite3" and (
                "disk is full" in str(here)
                or ("disk I/O error" in str(here) and _home_free() < _NEARLY_FULL)):
            where = ""  # SQLite says which database no more than "disk I/O error" does
        if where is not None:
            if not where:
                from ftkit.home import ftkit_home

                where = str(ftkit_home())
            return FtkitError(f"the disk holding {where} is full",
                              "free space, then run again (the run resumes)")
        todo += [here.__cause__, here.__context__]
    return None
