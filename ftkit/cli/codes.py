"""Exit statuses of the ``ftkit`` command and the two errors only the command line raises."""

from __future__ import annotations

from ftkit.errors import (
    ConfigError,
    DecisionError,
    FaultError,
    FtkitError,
    PackageError,
    ParameterError,
    TargetError,
    TransitionError,
)

__all__ = ["BAD_INPUT", "EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "EXIT_WAITING", "BadInput",
           "Failed", "exit_code"]

EXIT_OK = 0
EXIT_FAILED = 1  # a step, check, run or verification failed
EXIT_BAD_INPUT = 2  # usage error, unknown name, malformed file: nothing was changed
EXIT_WAITING = 3  # a campaign waits for an approval: approve, then run it again

#: Errors that mean the command line named something wrong (exit 2), not that work failed.
BAD_INPUT: tuple[type[FtkitError], ...] = (
    TargetError,
    ConfigError,
    PackageError,
    ParameterError,
    FaultError,
    DecisionError,
    TransitionError,
)


class BadInput(FtkitError):
    """Bad input the command line itself found (exit 2)."""


class Failed(FtkitError):
    """A check, run or verification that did not pass (exit 1); already reported."""


def exit_code(err: FtkitError) -> int:
    """The exit status an error ends the command with: 2 for bad input, else 1."""
    return EXIT_BAD_INPUT if isinstance(err, (BadInput, *BAD_INPUT)) else EXIT_FAILED
