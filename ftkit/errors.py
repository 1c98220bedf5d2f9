"""One exception root for ftkit; every error says what is wrong and how to fix it.

Each subclass passes all of its fields to ``super().__init__`` so that it pickles
across the kernel boundary of a papermill run (the papermill habit).
"""

from __future__ import annotations

__all__ = [
    "ActionTimeoutError",
    "ArchiveError",
    "ConfigError",
    "DecisionError",
    "FaultError",
    "FtkitError",
    "PackageError",
    "ParameterError",
    "RanAlreadyError",
    "SessionBusyError",
    "StepFailedError",
    "TargetError",
    "TransitionError",
    "is_ftkit_error",
]


class FtkitError(Exception):
    """Root of every error ftkit raises on purpose.

    ``str(err)`` is one line: what is wrong, then how to fix it.
    """

    def __init__(self, message: str, remedy: str = "") -> None:
        super().__init__(message, remedy)
        self.message = message
        self.remedy = remedy

    def __str__(self) -> str:
        if self.remedy:
            return f"{self.message} — {self.remedy}"
        return self.message

    def _render_traceback_(self) -> list[str]:
        """What IPython shows (and a notebook keeps) instead of a traceback: the message
        and the remedy, no code, no paths of this machine. The error is ftkit's own, said
        on purpose; a traceback would only bury the way on."""
        lines = [self.message]
        if self.remedy:
            lines.append(f"What to do: {self.remedy}")
        return lines


class TargetError(FtkitError):
    """A target string is malformed, names an unknown scheme, or no such system exists."""


class ConfigError(FtkitError):
    """An upgrade configuration file is missing, malformed or inconsistent."""


class PackageError(FtkitError):
    """An update package manifest is malformed or the package may not be upgraded."""


class ParameterError(FtkitError):
    """A run's parameter, or what it names, is refused before anything runs
    (:mod:`ftkit.preflight`): nothing was changed."""


class RanAlreadyError(ParameterError):
    """The change a run names ran already (its session ended): nothing is run again; the
    command line says which ledger entry holds it, where one does."""


class FaultError(FtkitError):
    """An unknown fault name or point was asked for."""


class TransitionError(FtkitError):
    """A request is not allowed in the current upgrade or operational state."""


class SessionBusyError(FtkitError):
    """Another session of the same system is in progress (in this or another process)."""


class StepFailedError(FtkitError):
    """A step of the Active Upgrade failed; the session is Broken at that step."""

    def __init__(self, message: str, remedy: str = "", step: str = "", reason: str = "") -> None:
        super().__init__(message, remedy)
        self.step = step
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str, str, str]]:  # every field pickles
        return (type(self), (self.message, self.remedy, self.step, self.reason))

    @classmethod
    def unexpected(cls, exc: BaseException, *, step: str) -> StepFailedError:
        """The failure of STEP by an exception that is not an FtkitError (a bug, a driver
        that raised something else): its reason is the exception's class and first line."""
        lines = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
        return cls(reason, "Retry the step, or Abort; if it fails again, report it",
                   step=step, reason=reason)


class DecisionError(FtkitError):
    """A decision is missing or not one of the allowed answers."""


class ArchiveError(FtkitError):
    """The report archive or its ledger is damaged, edited or reordered."""


class ActionTimeoutError(StepFailedError, TimeoutError):
    """A custom action, installer or partner side did not finish within its timeout."""


def is_ftkit_error(name: str) -> bool:
    """Whether NAME (an exception's class name, as a kernel reports it) is one of ftkit's
    own errors: they say what failed and the way on, so their class name is noise."""
    found = globals().get(name)
    return isinstance(found, type) and issubclass(found, FtkitError)
