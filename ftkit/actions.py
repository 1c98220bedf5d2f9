"""Custom actions: running those of one request at one moment, on each side, and saying
how they went.

:func:`run_actions` runs the custom actions a configuration attaches to a request
(``before`` or ``after`` it), on the Production side then the Upgrade side, through the
driver's ``run_custom_action``. Each run gets a declared environment and nothing else of
the caller's (:meth:`ftkit.config.CustomAction.environment`)::

    ACTIVE_UPGRADE_SIDE      Production | Upgrade
    ACTIVE_UPGRADE_STATE     before: the state the request starts from; after: its target
    ACTIVE_UPGRADE_REQUEST   the request (ftkit.model.Request)
    ACTIVE_UPGRADE_HW_SPLIT  Yes | No

Its output is text whatever bytes it printed (undecodable bytes become U+FFFD), and the
declared secrets (:attr:`ftkit.config.UpgradeConfig.secret_env`) and every registered
one are masked in it, in every form :func:`ftkit.redact.scrub` knows, *before* it is
handed to ``log`` (the journal). An action that succeeded is never run twice: a run
killed part of the way and resumed skips the actions ``done`` names (:func:`succeeded`
reads them from the journal). A non-zero exit raises :class:`StepFailedError`, a
timeout :class:`ActionTimeoutError`, each naming the action, after its output is logged.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any, Protocol

from ftkit.config import UpgradeConfig
from ftkit.drivers import Driver
from ftkit.errors import ActionTimeoutError, StepFailedError
from ftkit.journal import Entry
from ftkit.redact import mask_env

__all__ = ["OUTPUT_KEPT", "SIDES", "ActionLog", "run_actions", "succeeded"]

#: The sides an action may run on, in the order they are run.
SIDES = ("Production", "Upgrade")
#: How many characters of an action's stdout and of its stderr the journal keeps (the end).
OUTPUT_KEPT = 4000


class ActionLog(Protocol):
    """Where one action's result goes: ``log(message, remote=..., detail=...)`` (the
    session writes it to the journal as an ``action`` entry, one transaction)."""

    def __call__(self, message: str, *, remote: bool, detail: dict[str, Any]) -> None: ...


def succeeded(entries: Iterable[Entry], *, request: str, when: str) -> set[tuple[str, str]]:
    """``(action name, side)`` of every custom action of REQUEST at WHEN that the journal
    ENTRIES (its ``action`` entries) record as succeeded. Read-only."""
    return {
        (entry.detail["action"], entry.detail["side"])
        for entry in entries
        if entry.kind == "action" and isinstance(entry.detail, dict) and entry.detail.get("ok")
        and entry.detail.get("request") == request and entry.detail.get("when") == when
        and isinstance(entry.detail.get("action"), str)
        and isinstance(entry.detail.get("side"), str)
    }


def run_actions(
    driver: Driver,
    config: UpgradeConfig,
    *,
    request: str,
    when: str,
    state: str,
    log: ActionLog,
    done: Collection[tuple[str, str]] = (),
    before_each: Callable[[], None] | None = None,
) -> int:
    """Run the custom actions of REQUEST at WHEN (``before``/``after``) on each side, in
    the configuration's order, skipping those in DONE; STATE is ``ACTIVE_UPGRADE_STATE``.

    Writes what the actions do to the system, and one ``log`` call per action run, its
    output masked; BEFORE_EACH is called before each (the session journals what the step
    saw first). Returns how many ran. Raises :class:`ActionTimeoutError` or
    :class:`StepFailedError` (``step`` = REQUEST) at the first that timed out or exited
    non-zero; :class:`~ftkit.errors.ConfigError` if a ``secret_env`` variable is unset.
    """
    split: bool | None = None
    ran = 0
    for side in SIDES:
        for action in config.actions_for(request, when, side):
            if (action.name, side) in done:
                continue  # succeeded before this process died: never twice
            if before_each is not None:
                before_each()
            if split is None:
                split = driver.status().split
            env = action.environment({
                "ACTIVE_UPGRADE_SIDE": side,
                "ACTIVE_UPGRADE_STATE": state,
                "ACTIVE_UPGRADE_REQUEST": request,
                "ACTIVE_UPGRADE_HW_SPLIT": "Yes" if split else "No",
            })
            result = driver.run_custom_action(
                str(action.path), args=list(action.args), env=env,
                timeout_s=action.timeout_s, request=request, side=side)
            ran += 1
            ok = result.exit_code == 0 and not result.timed_out
            stdout = _masked(result.stdout, config)
            stderr = _masked(result.stderr, config)
            log(f"custom action {action.name} ({when} {request}, {side}) exit "
                f"{result.exit_code}" + (" (timed out)" if result.timed_out else ""),
                remote=(side == "Upgrade"),
                detail={"action": action.name, "side": side, "request": request,
                        "when": when, "ok": ok, "exit_code": result.exit_code,
                        "stdout": stdout, "stderr": stderr,
                        "duration_s": round(result.duration_s, 3)})
            if result.timed_out:
                raise ActionTimeoutError(
                    f"custom action {action.name} timed out after {action.timeout_s:g} s",
                    "fix the action or raise its timeout_s, then Retry",
                    step=request, reason=f"{action.name} timed out")
            if not ok:
                raise StepFailedError(
                    f"custom action {action.name} exited {result.exit_code}",
                    "read its output in the activity log, fix it, then Retry",
                    step=request, reason=f"{action.name} exit {result.exit_code}")
    return ran


def _masked(output: str | bytes | None, config: UpgradeConfig) -> str:
    """OUTPUT as text (a driver may hand bytes: undecodable ones become U+FFFD), every
    secret masked, then its last :data:`OUTPUT_KEPT` characters. Masked before it is cut,
    so that no cut leaves part of a secret to read."""
    if isinstance(output, bytes):
        output = output.decode("utf-8", errors="replace")
    return mask_env(output or "", config.secret_env)[-OUTPUT_KEPT:]
