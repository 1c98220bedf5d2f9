"""The HTML page of an archived run: one small, self-contained file per notebook.

An archive keeps these by the thousand, for years, and opens them offline, so the page

- loads nothing: no script, stylesheet, font or MathJax from the network (nor inline
  scripts: an output's ``<script>`` and ``<link>`` are dropped, a remote ``src`` is
  disarmed); images are ``data:`` URIs, SVG is inlined;
- holds every output: HTML (tables, the widgets' static renderings), SVG/PNG/JPEG images,
  Markdown, text and errors (ANSI colour codes stripped, a progress bar's carriage
  returns collapsed, a traceback folded under its one-line ``ename: evalue``);
- names the run in its ``<title>`` and header (change id, system, outcome, from the
  notebook's ``metadata.ftkit``);
- leaves out the sections that did not apply to this run: cells tagged ``if-output`` (a
  conditional section's prose and its code, such as the plan of plan mode or the abort
  of an upgrade) are shown only when one of their code cells produced an output;
- is small: about 1.5 KB of inline CSS instead of JupyterLab's 300 KB stylesheet.

It renders the notebook's JSON directly (nbformat 4 is simple), Markdown with mistune,
which nbconvert already depends on; nbconvert's exporter and its templates are not
used. A pure function of the notebook: same notebook, same bytes.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Mapping
from typing import Any

from ftkit.errors import is_ftkit_error

__all__ = ["notebook_html", "strip_ansi"]

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_SCRIPT = re.compile(r"<script\b.*?</script\s*>|<script\b[^>]*/>", re.IGNORECASE | re.DOTALL)
_LINK = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
_REMOTE = re.compile(r"""\b(src|srcset|href|xlink:href|action)(\s*=\s*["']?)(?=(?:https?:)?//)""",
                     re.IGNORECASE)
_ON_ATTR = re.compile(r"""\son[a-z]+\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
_TAG = re.compile(r"<[a-zA-Z][^>]*>")
_XML_PROLOG = re.compile(r"^\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?", re.IGNORECASE)
_WIDGET = "application/vnd.jupyter.widget-view+json"
_PAPERMILL_ERROR = "papermill-error-cell-tag"
CONDITIONAL = "if-output"  # the tag of a section shown only when its code said something

STYLE = """\
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#212121;
max-width:1100px;margin:1.5em auto;padding:0 1em}
header{border-bottom:2px solid #1565c0;margin-bottom:1em}
header table{border-collapse:collapse;margin:.5em 0}
header th{text-align:left;padding:1px 12px 1px 0;color:#555;font-weight:600;white-space:nowrap}
header td{padding:1px 0}
.o-committed,.o-checked,.o-planned{color:#2e7d32}.o-failed{color:#c62828}
.o-aborted,.o-stopped,.o-paused{color:#ef6c00}
.md h1{font-size:1.6em}.md h2{font-size:1.3em}.md h3{font-size:1.1em}
pre{background:#f5f5f5;padding:6px 8px;overflow-x:auto;white-space:pre-wrap;
font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;margin:.3em 0}
pre.in{border-left:3px solid #90caf9}
pre.stderr{background:#fff8e1}
.err{border-left:3px solid #c62828;padding-left:8px;margin:.4em 0}
.err b{color:#c62828}
.out{margin:.3em 0 .8em;overflow-x:auto}
.out table{border-collapse:collapse;font-size:13px}
.out th,.out td{border:1px solid #e0e0e0;padding:2px 6px;text-align:left;vertical-align:top}
.out img,.out svg{max-width:100%;height:auto}
details summary{cursor:pointer;color:#555}
"""


def strip_ansi(text: str) -> str:
    """TEXT without ANSI escape sequences, each line cut to what follows its last ``\\r``."""
    text = _ANSI.sub("", text)
    if "\r" in text:
        text = "\n".join(line.rsplit("\r", 1)[-1] if line.strip("\r") else line
                         for line in text.replace("\r\n", "\n").split("\n"))
    return text


def _text(value: Any) -> str:
    """A notebook string field, stored as a string or a list of lines."""
    if isinstance(value, list):
        return "".join(str(part) for part in value)
    return "" if value is None else str(value)


def _safe_html(fragment: str) -> str:
    """An output's HTML with scripts, stylesheet links, event handlers and remote
    sources removed: the page must load and run nothing."""
    fragment = _SCRIPT.sub("", fragment)
    fragment = _LINK.sub("", fragment)
    return _TAG.sub(lambda tag: _REMOTE.sub(r"data-removed-\1\2", _ON_ATTR.sub("", tag[0])),
                    fragment)


def _markdown() -> Any:
    import mistune

    return mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])


def _pre(text: str, cls: str) -> str:
    return f"<pre class='{cls}'>{html.escape(strip_ansi(text))}</pre>"


def _data_output(data: Mapping[str, Any], md: Any) -> str:
    """The richest representation of one display_data/execute_result output."""
    if "text/html" in data:
        return _safe_html(_text(data["text/html"]))
    if "image/svg+xml" in data:
        return _safe_html(_XML_PROLOG.sub("", _text(data["image/svg+xml"])))
    for mime in ("image/png", "image/jpeg", "image/gif"):
        if mime in data:
            payload = "".join(_text(data[mime]).split())
            try:
                base64.b64decode(payload, validate=True)
            except ValueError:
                return _pre(f"[{mime} output that is not base64]", "stderr")
            return f"<img alt='figure' src='data:{mime};base64,{payload}'>"
    if "text/markdown" in data:
        return str(md(_text(data["text/markdown"])))
    if "application/json" in data:
        return _pre(json.dumps(data["application/json"], indent=1, ensure_ascii=False), "json")
    if _WIDGET in data:
        return ""  # a live widget: its static rendering, if any, is another output
    if "text/plain" in data:
        return _pre(_text(data["text/plain"]), "plain")
    if "text/latex" in data:
        return _pre(_text(data["text/latex"]), "latex")
    return ""


def _output(output: Mapping[str, Any], md: Any) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        name = "stderr" if output.get("name") == "stderr" else "stdout"
        return _pre(_text(output.get("text")), name)
    if kind == "error":
        ename, evalue = str(output.get("ename", "")), str(output.get("evalue", ""))
        head = html.escape(strip_ansi(evalue if is_ftkit_error(ename) else f"{ename}: {evalue}"))
        trace = strip_ansi("\n".join(_text(line) for line in output.get("traceback") or []))
        folded = (f"<details><summary>traceback</summary><pre>{html.escape(trace)}</pre>"
                  "</details>") if trace.strip() else ""
        return f"<div class='err'><b>{head}</b>{folded}</div>"
    if kind in ("display_data", "execute_result"):
        return _data_output(output.get("data") or {}, md)
    return ""


def _title(facts: Mapping[str, Any], fallback: str) -> str:
    parts = [str(facts.get(k) or "") for k in ("change_id", "system", "outcome")]
    parts = [p for p in parts if p]
    runbook = str(facts.get("runbook") or fallback)
    return " · ".join([*parts, runbook]) if parts else runbook


_HEADER_FIELDS = (
    ("runbook", "Runbook"), ("change_id", "Change"), ("system", "System"),
    ("operator", "Operator"), ("account", "Account"), ("outcome", "Outcome"),
    ("outage_s", "Outage (s)"),
    ("started", "Started (UTC)"), ("ended", "Ended (UTC)"), ("seq", "Ledger seq"),
    ("error", "Error"),
)


def _header(facts: Mapping[str, Any], title: str) -> str:
    rows = []
    for key, label in _HEADER_FIELDS:
        value = facts.get(key)
        if value in (None, ""):
            continue
        cell = html.escape(f"{value:g}" if isinstance(value, float) else str(value))
        if key == "outcome":
            cell = f"<b class='o-{html.escape(str(value))}'>{cell}</b>"
        rows.append(f"<tr><th>{label}</th><td>{cell}</td></tr>")
    table = f"<table>{''.join(rows)}</table>" if rows else ""
    return f"<header><h1>{html.escape(title)}</h1>{table}</header>"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _banner(text: str) -> str:
    """Papermill's error banner in words a change manager reads (others kept as given)."""
    found = re.match(r"An Exception was encountered at .In \[(\d+)\].\.?$", text)
    if found:
        return (f"This run stopped with an error at cell [{found[1]}]: what failed, why and "
                "the way on are shown there; the record still ends with the activity log, "
                "the timeline and the result.")
    if text.startswith("Execution using papermill encountered an exception here"):
        return "The run stopped at the cell below."
    return text


def _tags(cell: Mapping[str, Any]) -> list[str]:
    return list((cell.get("metadata") or {}).get("tags") or [])


def _applicable(cells: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """CELLS without the conditional sections that did not apply: a run of consecutive
    cells tagged ``if-output`` is dropped when none of its code cells has an output."""
    kept: list[Mapping[str, Any]] = []
    group: list[Mapping[str, Any]] = []
    for cell in [*cells, {}]:  # a sentinel closes the last group
        if CONDITIONAL in _tags(cell):
            group.append(cell)
            continue
        if any(c.get("cell_type") == "code" and c.get("outputs") for c in group):
            kept.extend(group)
        group = []
        if cell:
            kept.append(cell)
    return kept


def notebook_html(nb: Mapping[str, Any]) -> str:
    """The self-contained HTML page of notebook NB (a NotebookNode or its JSON dict)."""
    md = _markdown()
    metadata = nb.get("metadata") or {}
    facts = _mapping(metadata.get("ftkit"))
    papermill = _mapping(metadata.get("papermill"))
    fallback = str(papermill.get("input_path") or "notebook").rsplit("/", 1)[-1]
    title = _title(facts, fallback.removesuffix(".ipynb"))
    body: list[str] = [_header(facts, title)]
    for cell in _applicable(nb.get("cells") or []):
        kind = cell.get("cell_type")
        source = _text(cell.get("source"))
        if kind == "markdown" and _PAPERMILL_ERROR in _tags(cell):
            # papermill's banners are raw HTML: a plain note in an operator's words
            text = _banner(html.unescape(re.sub(r"<[^>]*>", "", source)).strip())
            body.append(f"<div class='err'><b>{html.escape(text)}</b></div>")
        elif kind == "markdown":
            body.append(f"<section class='md'>{md(source)}</section>")
        elif kind == "code":
            if source.strip():
                body.append(f"<pre class='in'>{html.escape(source)}</pre>")
            parts = [_output(o, md) for o in cell.get("outputs") or []]
            if any(parts):
                body.append(f"<div class='out'>{''.join(p for p in parts if p)}</div>")
        elif kind == "raw" and source.strip():
            body.append(_pre(source, "raw"))
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")
