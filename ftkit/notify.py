"""A pending decision reaches people: notifications through apprise.

The configuration's ``notify = ["json://…", "mailto://…"]`` lists apprise URLs (one library
for e-mail, Slack, Teams, Matrix and plain JSON webhooks). A credential is never written
in one: it is named, ``mailto://ops:${SMTP_PASSWORD}@mail.example``, and taken from the
environment when the message is sent (the variable is one of the configuration's
``secret_env``: its value is masked wherever it would show). :func:`pending` sends, once
per session and thing awaited, which system, which change, what waits, who may answer and
the exact command to answer, and journals that it did (or why it could not: a failure to
notify is logged, never fatal).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ftkit.redact import register_secret, scrub

if TYPE_CHECKING:
    from ftkit.process import Session

__all__ = ["decision_pending", "pending", "send"]

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(url: str, environ: Mapping[str, str]) -> str:
    """URL with each ``${NAME}`` replaced by the variable's value (registered as a secret);
    a KeyError names a variable that is not set."""

    def value(match: re.Match[str]) -> str:
        secret = environ[match.group(1)]
        register_secret(secret)
        return secret

    return _REF.sub(value, url)


def send(urls: Sequence[str], *, title: str, body: str,
         environ: Mapping[str, str] | None = None) -> str | None:
    """Send TITLE and BODY to every apprise URL in URLS; None when each took it, else why
    not, in one line (secrets masked). Never raises for a failure to deliver."""
    import warnings

    # apprise's plugins import imghdr, deprecated since Python 3.11: its warning, not ours
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return _send(urls, title=title, body=body, environ=environ)


def _send(urls: Sequence[str], *, title: str, body: str,
          environ: Mapping[str, str] | None) -> str | None:
    import logging

    import apprise

    env = os.environ if environ is None else environ
    hub = apprise.Apprise()
    problems: list[str] = []
    for url in urls:
        try:
            expanded = _expand(url, env)
        except KeyError as err:
            problems.append(f"{_shown(url)}: environment variable {err.args[0]} is not set")
            continue
        if not hub.add(expanded):
            problems.append(f"{_shown(url)}: not an apprise URL")
    if len(hub):
        with apprise.LogCapture(level=logging.WARNING) as log:
            ok = hub.notify(title=title, body=body)
            said = " ".join(str(log.getvalue()).split())
        if not ok:
            problems.append(f"not delivered: {said or 'no reason given'}")
    return scrub("; ".join(problems))[:500] if problems else None


def _shown(url: str) -> str:
    """A URL as it may be shown: its scheme and host, nothing after."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/")[0].rpartition("@")[2]
    return f"{scheme}://{host}"


def pending(session: Session, *, what: str, who: str, answer: str,
            name: str = "") -> bool:
    """Tell the configuration's ``notify`` URLs that SESSION waits for WHAT (``decision``,
    ``approval``): once per session and WHAT/NAME (a later call does nothing). Journals
    that it was sent, or why not (``warning``); never raises for a failure to notify.
    Returns True when it sent something now. Writes nothing without ``notify``."""
    urls = tuple(getattr(session.config, "notify", ()) or ())
    record = session.record
    if not urls or record is None:
        return False
    key = f"{what}:{name}" if name else what
    for entry in session.entries(kinds=["info", "warning"]):
        said = entry.detail if isinstance(entry.detail, dict) else {}
        sent = said.get("notify")
        if isinstance(sent, dict) and sent.get("about") == key:
            return False
    change = record.change_id or session.change_id or "-"
    title = f"ftkit: {session.target} ({change}) waits for {what}" + (f" {name}"
                                                                      if name else "")
    body = (f"System: {session.target}\nChange: {change}\n"
            f"Waiting for: {what}{' ' + name if name else ''} "
            f"(session {record.id}, {record.upgrade_state})\n"
            f"Who may answer: {who}\nTo answer: {answer}\n")
    try:
        error = send(urls, title=title, body=body)
    except Exception as err:  # a broken notifier never stops an upgrade
        error = scrub(f"{type(err).__name__}: {err}")[:500]
    detail: dict[str, Any] = {"about": key, "ok": error is None, "targets": len(urls)}
    if error is None:
        session.journal.log(record.id, "info",
                            f"notified {len(urls)} target(s): {title}",
                            detail={"notify": detail}, sim_time=session.now())
    else:
        detail["error"] = error
        session.journal.log(record.id, "warning",
                            f"could not notify that {key.replace(':', ' ')} waits: {error}",
                            detail={"notify": detail}, sim_time=session.now())
    return True


def decision_pending(session: Session, name: str) -> bool:
    """:func:`pending` for decision NAME: who may answer (the operator, in the runbook) and
    the command that answers it. What the engine calls when a step waits for an answer and
    a decision panel calls when it is shown; once a session per decision."""
    from ftkit.decisions import CHOICES, account

    who = f"the operator {session.operator or '-'} (account {account()}), in the runbook"
    answer = (f"click an answer in the runbook, or ftkit run active-upgrade -p system "
              f"{session.target} -p mode auto -p change_id {session.change_id or '-'} "
              f"-p operator {session.operator or '-'} -p decisions "
              f"\"{{{name}: {' | '.join(CHOICES.get(name, ()))}}}\"")
    return pending(session, what="decision", name=name, who=who, answer=answer)
