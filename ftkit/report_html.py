"""The HTML page of an archived run: a document anyone reads, that never runs anything.

An archive keeps these by the thousand, for years, and opens them offline, so the page

- runs and loads nothing: every output's HTML (and Markdown, and SVG) goes through
  ``nh3`` (the Ammonia sanitizer) with an allow-list of tags, attributes, CSS properties
  and URLs (no script, no event handler, no ``javascript:`` or ``data:text/html`` URL, no
  iframe, no remote load: an image is a ``data:`` URI); and the page carries a
  Content-Security-Policy ``<meta>`` (:data:`CSP`) so that a sanitizer miss still runs
  nothing;
- reads as a document, not a notebook dump: a summary block first (change, system,
  operator and account, approver and window when the run has them, reason, packages
  before → after, the configuration's and packages' digests, outcome, outage, lost
  transactions, started/ended in UTC, who handed over to whom), gathered by
  :mod:`ftkit.record` when the run was archived; then the runbook's prose and each
  code cell's output; the code itself only in one closed "Show the code" appendix (the
  parameters defaults cell never: the run's values are in the summary); then the custom
  actions' output as evidence, as text;
- holds every output: HTML (tables, the widgets' static renderings), SVG/PNG/JPEG images,
  Markdown, text and errors (ANSI colour codes stripped, a progress bar's carriage
  returns collapsed, a traceback folded under its one-line ``ename: evalue``);
- says only what is true in a record: no cell numbers, no panel to click (a live view's
  words for the notebook are given their record form), nothing after the cell where a
  failed run stopped;
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

__all__ = ["CSP", "notebook_html", "sanitize", "strip_ansi"]

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_XML_PROLOG = re.compile(r"^\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?", re.IGNORECASE)
_WIDGET = "application/vnd.jupyter.widget-view+json"
_PAPERMILL_ERROR = "papermill-error-cell-tag"
CONDITIONAL = "if-output"  # the tag of a section shown only when its code said something

#: Every record's Content-Security-Policy: no script, no remote load, inline styles and
#: ``data:`` images only — what a sanitizer miss would need is forbidden by the browser.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

# the allow-list of the sanitizer: what a runbook's outputs use (tables, the widgets'
# static views and their SVG pictures, pandas' tables, Markdown), nothing that runs or loads
_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del",
    "details", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp",
    "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "time", "tr", "u", "ul",
    # SVG shapes and text (no use, image, foreignObject, animate/set, script or style)
    "svg", "g", "rect", "circle", "ellipse", "line", "polyline", "polygon", "path", "text",
    "tspan", "title", "desc", "defs", "marker", "linearGradient", "stop", "clipPath",
})
_ATTRIBUTES = {
    "*": {"class", "style", "title", "align", "valign", "width", "height", "lang", "dir"},
    "a": {"href"},
    "img": {"src", "alt"},
    "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan", "scope"},
    "col": {"span"}, "colgroup": {"span"}, "ol": {"start", "type"},
    "details": {"open"}, "time": {"datetime"}, "table": {"border"},
    **{tag: {"viewBox", "x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "r", "rx", "ry", "d",
             "points", "fill", "fill-opacity", "stroke", "stroke-width", "stroke-dasharray",
             "stroke-linecap", "stroke-linejoin", "stroke-opacity", "opacity", "transform",
             "font-size", "font-family", "font-weight", "font-style", "text-anchor",
             "dominant-baseline", "dx", "dy", "offset", "stop-color", "stop-opacity",
             "marker-end", "marker-start", "markerWidth", "markerHeight", "refX", "refY",
             "orient", "preserveAspectRatio", "xmlns", "id", "clip-path", "gradientUnits"}
       for tag in ("svg", "g", "rect", "circle", "ellipse", "line", "polyline", "polygon",
                   "path", "text", "tspan", "defs", "marker", "linearGradient", "stop",
                   "clipPath")},
}
_STYLE_PROPERTIES = frozenset({
    "color", "background", "background-color", "font-weight", "font-style", "font-size",
    "font-family", "font", "text-align", "vertical-align", "white-space", "text-decoration",
    "line-height", "display", "margin", "margin-top", "margin-right", "margin-bottom",
    "margin-left", "padding", "padding-top", "padding-right", "padding-bottom",
    "padding-left", "border", "border-top", "border-right", "border-bottom", "border-left",
    "border-color", "border-collapse", "border-radius", "border-spacing", "width",
    "max-width", "min-width", "height", "max-height", "overflow", "overflow-x", "cursor",
    "fill", "stroke", "opacity", "gap", "flex", "flex-wrap", "flex-direction",
    "align-items", "justify-content", "list-style", "list-style-type",
})
_IMAGE_DATA = re.compile(r"data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*\Z",
                         re.IGNORECASE)
_CSS_RISK = re.compile(r"url\s*\(|expression\s*\(|\\|@import|behaviou?r\s*:|-moz-binding",
                       re.IGNORECASE)


#: another record of the same archive, by its file name (a campaign's record links each
#: system's): no scheme, no folder, nothing but a report's name
_SIBLING_RECORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.(?:html|ipynb)$")


def _attribute(tag: str, name: str, value: str) -> str | None:
    """An attribute's value as kept (None drops it): images only from ``data:image/…``
    URIs, links only within the page or to another record of the archive, no style that
    could load or compute anything."""
    if name == "src":
        return value if tag == "img" and _IMAGE_DATA.match(value.strip()) else None
    if name == "href":
        href = value.strip()
        return value if href.startswith("#") or _SIBLING_RECORD.match(href) else None
    if name == "style" and _CSS_RISK.search(value):
        return None
    return value


def sanitize(fragment: str) -> str:
    """FRAGMENT of HTML (an output, rendered Markdown, an SVG) as an allow-list keeps it
    (nh3): no script, style element, event handler, frame, form, remote or script URL.
    A pure function."""
    import nh3

    return str(nh3.clean(fragment, tags=set(_TAGS), attributes={
        k: set(v) for k, v in _ATTRIBUTES.items()}, attribute_filter=_attribute,
        filter_style_properties=set(_STYLE_PROPERTIES), url_schemes={"data"},
        link_rel=None, strip_comments=True))


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
.sec{color:#555;font-weight:600;margin:.6em 0 0}.evidence h3{font-size:1em;margin:.6em 0 .2em}
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


# a start tag as nh3 writes it: every attribute double-quoted (a quote inside escaped)
_START_TAG = re.compile(r'<([a-zA-Z][\w-]*)((?:\s+[\w:-]+="[^"]*")*)(\s*/?)>')
_STYLE_ATTR = re.compile(r'\sstyle="([^"]*)"')
_CLASS_ATTR = re.compile(r'\sclass="([^"]*)"')
# what a hoisted declaration may hold: nothing that could end the <style> element or
# open a rule, an at-rule or an escape
_PLAIN_CSS = re.compile(r"[\w\s#%.,:;()'/+-]*\Z")


def _hoist_styles(body: str) -> tuple[str, str]:
    """(BODY with every inline style that is used more than once replaced by a class,
    the CSS of those classes): the widgets repeat the same few styles hundreds of times.
    Each declaration is ``!important``, so it wins over the page's rules as the inline
    style did. Only styles of plain CSS characters move; the others stay inline."""
    counts: dict[str, int] = {}
    for tag in _START_TAG.finditer(body):
        found = _STYLE_ATTR.search(tag[2])
        if found:
            counts[found[1]] = counts.get(found[1], 0) + 1
    names: dict[str, str] = {}
    for value, count in counts.items():  # first use first: the same notebook, the same page
        if count > 1 and _PLAIN_CSS.match(html.unescape(value)):
            names[value] = f"z{len(names)}"
    if not names:
        return body, ""

    def rewrite(tag: re.Match[str]) -> str:
        attrs = tag[2]
        found = _STYLE_ATTR.search(attrs)
        if not found or found[1] not in names:
            return tag[0]
        attrs = attrs[:found.start()] + attrs[found.end():]
        cls = _CLASS_ATTR.search(attrs)
        name = names[found[1]]
        attrs = (attrs[:cls.start()] + f' class="{cls[1]} {name}"' + attrs[cls.end():]
                 if cls else f'{attrs} class="{name}"')
        return f"<{tag[1]}{attrs}{tag[3]}>"

    rules = []
    for value, name in names.items():
        declarations = [d.strip() for d in html.unescape(value).split(";") if d.strip()]
        rules.append(f".{name}{{{';'.join(d + '!important' for d in declarations)}}}")
    return _START_TAG.sub(rewrite, body), "\n".join(rules) + "\n"


def _markdown() -> Any:
    import mistune

    return mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])


def _pre(text: str, cls: str) -> str:
    return f"<pre class='{cls}'>{html.escape(strip_ansi(text))}</pre>"


def _data_output(data: Mapping[str, Any], md: Any) -> str:
    """The richest representation of one display_data/execute_result output."""
    if "text/html" in data:
        return sanitize(in_record_words(_text(data["text/html"])))
    if "image/svg+xml" in data:
        return sanitize(_XML_PROLOG.sub("", _text(data["image/svg+xml"])))
    for mime in ("image/png", "image/jpeg", "image/gif"):
        if mime in data:
            payload = "".join(_text(data[mime]).split())
            try:
                base64.b64decode(payload, validate=True)
            except ValueError:
                return _pre(f"[{mime} output that is not base64]", "stderr")
            return f"<img alt='figure' src='data:{mime};base64,{payload}'>"
    if "text/markdown" in data:
        return sanitize(str(md(in_record_words(_text(data["text/markdown"])))))
    if "application/json" in data:
        return _pre(json.dumps(data["application/json"], indent=1, ensure_ascii=False), "json")
    if _WIDGET in data:
        return ""  # a live widget: its static rendering, if any, is another output
    if "text/plain" in data:
        return _pre(in_record_words(_text(data["text/plain"])), "plain")
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


def _header(facts: Mapping[str, Any], record: Mapping[str, Any], title: str) -> str:
    """The title and the summary block: the rows :mod:`ftkit.record` gathered when the run
    was archived (else the ledger's facts), then its runbook, ledger seq and error."""
    summary = record.get("summary")
    pairs: list[tuple[str, Any]] = []
    if isinstance(summary, list):
        pairs = [(str(r[0]), r[1]) for r in summary if isinstance(r, list) and len(r) == 2]
        pairs += [(label, facts.get(key)) for key, label in (
            ("runbook", "Runbook"), ("seq", "Ledger seq"), ("error", "Error"))]
    else:
        pairs = [(label, facts.get(key)) for key, label in _HEADER_FIELDS]
    rows = []
    for label, value in pairs:
        if value in (None, ""):
            continue
        cell = html.escape(f"{value:g}" if isinstance(value, float) else str(value))
        if label == "Outcome":
            cell = f"<b class='o-{html.escape(str(value))}'>{cell}</b>"
        rows.append(f"<tr><th>{html.escape(label)}</th><td>{cell}</td></tr>")
    table = f"<table class='summary'>{''.join(rows)}</table>" if rows else ""
    return f"<header><h1>{html.escape(title)}</h1>{table}</header>"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


#: A live view's words for the notebook, in the form that is true in a record (nothing to
#: click there); the live form comes from ftkit_widgets' failure view.
_RECORD_WORDS = (
    (re.compile(r"click Retry in the panel below; or run\b"), "run"),
    (re.compile(r"click Abort in the panel below, or run\b"), "run"),
    (re.compile(r"\b(?:click|press) (\w+) in the panel below\b"),
     r"choose \1 (in JupyterLab, the runbook's panel offers it)"),
    (re.compile(r"\bin the panel below\b"), "in the runbook's panel in JupyterLab"),
)


def in_record_words(text: str) -> str:
    """TEXT with a live view's directions ("click Abort in the panel below") in the words
    that are true in an archived record. A pure function."""
    for pattern, words in _RECORD_WORDS:
        text = pattern.sub(words, text)
    return text


def _heading(source: str) -> str:
    """The first Markdown heading of SOURCE, without its hashes ("" if none)."""
    found = re.search(r"^#{1,6}\s+(.+?)\s*#*\s*$", source, re.MULTILINE)
    return found[1] if found else ""


def _banner(text: str, section: str) -> str:
    """Papermill's error banner in words a change manager reads (others kept as given)."""
    if re.match(r"An Exception was encountered at .In \[\d+\].\.?$", text):
        where = f" in “{section}”" if section else ""
        return (f"This run stopped with an error{where}: what failed, why and the way on "
                "are shown there.")
    if text.startswith("Execution using papermill encountered an exception here"):
        return "The run stopped here, with the error below."
    return text


def _tags(cell: Mapping[str, Any]) -> list[str]:
    return list((cell.get("metadata") or {}).get("tags") or [])


def _ran(cell: Mapping[str, Any]) -> bool:
    return cell.get("cell_type") == "code" and (
        cell.get("execution_count") is not None or bool(cell.get("outputs")))


def _failed(cell: Mapping[str, Any]) -> bool:
    return any(o.get("output_type") == "error" for o in cell.get("outputs") or [])


def _applicable(cells: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """CELLS without the conditional sections that did not apply (a run of consecutive
    cells tagged ``if-output`` is dropped when none of its code cells has an output), and
    without what follows the cell where a failed run stopped (it never ran)."""
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
    failed = [i for i, cell in enumerate(kept) if _failed(cell)]
    if failed:
        last = max([failed[0], *[i for i, cell in enumerate(kept) if _ran(cell)]])
        kept = kept[:last + 1]
    return kept


def _where_it_stopped(cells: list[Mapping[str, Any]]) -> str:
    """The heading of the section whose code failed ("" if none failed, or no heading)."""
    section = ""
    for cell in cells:
        if cell.get("cell_type") == "markdown" and _PAPERMILL_ERROR not in _tags(cell):
            section = _heading(_text(cell.get("source"))) or section
        elif _failed(cell):
            return section
    return ""


def _evidence(record: Mapping[str, Any]) -> str:
    """The custom actions' output, as text (masked when journaled, bounded)."""
    actions = [a for a in record.get("evidence") or [] if isinstance(a, Mapping)]
    if not actions:
        return ""
    parts = ["<section class='evidence'><h2>Evidence: the custom actions' output</h2>"]
    for act in actions:
        status = "timed out" if act.get("exit_code") is None else f"exit {act.get('exit_code')}"
        said = (f"{act.get('action')} — {act.get('when')} {act.get('request')}, "
                f"{act.get('side')} side: {status}, {act.get('at')}")
        parts.append(f"<h3>{html.escape(said)}</h3>")
        for stream in ("stdout", "stderr"):
            text = str(act.get(stream) or "")
            if text.strip():
                parts.append(f"<p>{stream}:</p>{_pre(text, stream)}")
        if not any(str(act.get(s) or "").strip() for s in ("stdout", "stderr")):
            parts.append("<p>(no output)</p>")
    parts.append("</section>")
    return "".join(parts)


def _appendix(code: list[tuple[str, str]]) -> str:
    """The code that ran, for those who want it: one closed ``<details>`` (no script)."""
    if not code:
        return ""
    blocks, last = [], None
    for section, source in code:
        if section != last:
            blocks.append(f"<p class='sec'>{html.escape(section or 'Introduction')}</p>")
            last = section
        blocks.append(f"<pre class='in'>{html.escape(source)}</pre>")
    return ("<details class='code'><summary>Show the code that ran (it is kept in the "
            f"notebook beside this page)</summary>{''.join(blocks)}</details>")


def notebook_html(nb: Mapping[str, Any]) -> str:
    """The self-contained HTML page of notebook NB (a NotebookNode or its JSON dict): a
    document with its summary first, the code only in a closed appendix. A pure function
    (read-only)."""
    md = _markdown()
    metadata = nb.get("metadata") or {}
    facts = _mapping(metadata.get("ftkit"))
    record = _mapping(metadata.get("ftkit_record"))
    papermill = _mapping(metadata.get("papermill"))
    fallback = str(papermill.get("input_path") or "notebook").rsplit("/", 1)[-1]
    title = _title(facts, fallback.removesuffix(".ipynb"))
    body: list[str] = [_header(facts, record, title)]
    cells = _applicable(list(nb.get("cells") or []))
    stopped_in = _where_it_stopped(cells)
    code: list[tuple[str, str]] = []
    section = ""
    for cell in cells:
        kind = cell.get("cell_type")
        source = _text(cell.get("source"))
        if kind == "markdown" and _PAPERMILL_ERROR in _tags(cell):
            # papermill's banners are raw HTML: a plain note in an operator's words
            text = _banner(html.unescape(re.sub(r"<[^>]*>", "", source)).strip(), stopped_in)
            body.append(f"<div class='err'><b>{html.escape(text)}</b></div>")
        elif kind == "markdown":
            section = _heading(source) or section
            body.append(f"<section class='md'>{sanitize(str(md(source)))}</section>")
        elif kind == "code":
            if "parameters" in _tags(cell):
                continue  # the defaults: the run's own values are in the summary
            if source.strip() and _ran(cell):
                code.append((section, source))
            parts = [_output(o, md) for o in cell.get("outputs") or []]
            if any(parts):
                body.append(f"<div class='out'>{''.join(p for p in parts if p)}</div>")
        elif kind == "raw" and source.strip():
            body.append(_pre(source, "raw"))
    body.append(_evidence(record))
    body.append(_appendix(code))
    page, hoisted = _hoist_styles("".join(body))
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}{hoisted}</style></head>"
            f"<body>{page}</body></html>\n")
