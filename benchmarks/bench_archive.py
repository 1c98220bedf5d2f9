"""How ``ftkit reports verify`` scales, and how big the archive's HTML is (not a test).

Run from the repository root::

    python benchmarks/bench_archive.py [REPORT.ipynb ...]

It builds synthetic archives of 1,000 and 10,000 readiness-check reports (real report
files: an executed notebook and its HTML, rendered as ``archive_run`` renders them,
each entry with its own copies, a hash-chained ledger line signed with Ed25519 and a
signed checkpoint after it, as ``archive_run`` writes them) and prints the time of a
full verification of each — the ledger and files and every checkpoint
(``verify_archive``, what ``ftkit reports verify`` does) — with a warm page cache
(median of 3, after one warm-up), their ratio (10.0 means linear), the bytes read, the
checkpoints' part measured alone, and an incremental verification after 10 more entries
(``ftkit reports verify --incremental``, and its ledger-and-files part alone). With
notebooks given (executed ones, e.g. from ``ftkit run``), it also prints the size of
their HTML beside the size nbconvert's "lab" template gives the same notebook (the
baseline; "n/a" where its templates are not installed).

Everything happens in a temporary folder, removed at the end.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ftkit import canonical  # noqa: E402
from ftkit.archive import (  # noqa: E402
    LEDGER,
    ZERO_HASH,
    RunResult,
    _sign,
    verify_archive,
    verify_reports,
)
from ftkit.checkpoints import (  # noqa: E402
    CHECKPOINTS,
    ORIGIN_PREFIX,
    make_note,
    verify_checkpoints,
)
from ftkit.report_html import notebook_html  # noqa: E402

GOAL_VERIFY_S = 2.0
GOAL_HTML = {"readiness-check": 60_000, "active-upgrade": 250_000}


def _sample_report() -> tuple[bytes, bytes]:
    """An executed readiness-check-like notebook and its HTML: the real renderer, on
    a notebook with a result and a table of 17 checks."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    rows = "".join(f"<tr><td>check-{n}</td><td>Check number {n}</td><td>pass</td>"
                   f"<td>{'all good ' * 8}</td><td></td></tr>" for n in range(17))
    result = RunResult("checked", system="sim://bench", change_id="", operator="")
    nb = new_notebook(cells=[
        new_markdown_cell("# Readiness check\n\n" + "Explains the check. " * 40),
        new_code_cell("system = 'sim://bench'", execution_count=1),
        new_code_cell("fw.readiness_table(results)", execution_count=2, outputs=[
            new_output("display_data", data={"text/html": f"<table>{rows}</table>",
                                             "text/plain": "table"})]),
        new_code_cell("ftkit.RunResult(...)", execution_count=3, outputs=[
            new_output("execute_result", execution_count=3,
                       data=result._repr_mimebundle_())]),
    ])
    nb.metadata["ftkit"] = {"seq": 1, "runbook": "readiness-check", "outcome": "checked",
                            "system": "sim://bench"}
    text = nbformat.writes(nb)
    return text.encode("utf-8"), notebook_html(nb).encode("utf-8")


_KEY: list[object] = []


def _key() -> object:
    """One Ed25519 key for every archive of the run."""
    if not _KEY:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        _KEY.append(Ed25519PrivateKey.generate())
    return _KEY[0]


def build_archive(folder: Path, count: int, nb_bytes: bytes, html_bytes: bytes,
                  *, first: int = 1, prev: str = ZERO_HASH) -> str:
    """Append COUNT entries (seq FIRST…) with their two report files to FOLDER, each
    line signed and followed by a signed checkpoint; return the last hash. Each entry
    gets its own files (same bytes, so one digest each)."""
    folder.mkdir(parents=True, exist_ok=True)
    nb_digest, html_digest = canonical.sha256_hex(nb_bytes), canonical.sha256_hex(html_bytes)
    lines, notes, key = [], [], _key()
    origin = None
    for seq in range(first, first + count):
        name = f"20250301T{seq // 3600 % 24:02d}{seq // 60 % 60:02d}{seq % 60:02d}Z-rc-{seq}"
        (folder / f"{name}.ipynb").write_bytes(nb_bytes)
        (folder / f"{name}.html").write_bytes(html_bytes)
        entry = {"seq": seq, "files": {f"{name}.ipynb": nb_digest, f"{name}.html": html_digest},
                 "runbook": "readiness-check", "parameters": {"system": "sim://bench"},
                 "change_id": "", "operator": "bench", "system": "sim://bench",
                 "started": "2025-03-01T02:00:00.000Z", "ended": "2025-03-01T02:00:03.000Z",
                 "outcome": "checked", "outage_s": None, "error": None,
                 "source": canonical.sha256_hex(str(seq)), "prev": prev}
        entry["hash"] = canonical.sha256_hex(canonical.dumps(entry))
        entry["signature"] = _sign(key, entry["hash"])
        prev = entry["hash"]
        lines.append(canonical.dumps(entry))
        if seq == 1:
            origin = ORIGIN_PREFIX + prev[:16]
        notes.append(canonical.dumps({"note": make_note(
            origin=origin or ORIGIN_PREFIX + "0" * 16, size=seq, head=prev,
            signers=[key])}))
    with (folder / LEDGER).open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    with (folder / CHECKPOINTS).open("a", encoding="utf-8") as handle:
        handle.write("\n".join(notes) + "\n")
    return prev


def _timed(folder: Path, runs: int = 3) -> tuple[float, float, float]:
    """Median wall and CPU seconds of a full verification of FOLDER (ledger, files and
    checkpoints, as `ftkit reports verify` does), and the median wall seconds of its
    checkpoints' part measured alone (reading the ledger itself)."""
    walls, cpus, parts = [], [], []
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        found = verify_archive(folder)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
        assert found.problems == [], found.problems[:3]
        assert found.checkpoints.own == found.entries == int(folder.name.split("-")[-1])
        start = time.perf_counter()
        verify_checkpoints(folder)
        parts.append(time.perf_counter() - start)
    return statistics.median(walls), statistics.median(cpus), statistics.median(parts)


def _real_report(notebooks: list[Path]) -> tuple[bytes, bytes] | None:
    """The bytes of an archived readiness-check notebook among NOTEBOOKS and its HTML."""
    for path in notebooks:
        html_path = path.with_suffix(".html")
        if "readiness-check" in path.name and html_path.is_file():
            return path.read_bytes(), html_path.read_bytes()
    return None


def verify_figures(scratch: Path, notebooks: list[Path]) -> None:
    nb_bytes, html_bytes = _real_report(notebooks) or _sample_report()
    per_entry = len(nb_bytes) + len(html_bytes)
    print(f"verify (full, warm page cache, median of 3; report files {len(nb_bytes):,} + "
          f"{len(html_bytes):,} bytes per entry):")
    figures = {}
    for count in (1_000, 10_000):
        folder = scratch / f"archive-{count}"
        last = build_archive(folder, count, nb_bytes, html_bytes)
        verify_reports(folder)  # warm-up: page cache
        figures[count], cpu, part = _timed(folder)
        print(f"  {count:>6,} entries: {figures[count]:6.3f} s wall, {cpu:6.3f} s CPU  "
              f"({figures[count] / count * 1e6:5.1f} µs/entry, reads "
              f"{count * per_entry / 1e6:,.0f} MB; the checkpoints alone {part:5.3f} s)")
    ratio = figures[10_000] / figures[1_000]
    goal = "met" if figures[10_000] < GOAL_VERIFY_S else "NOT met"
    print(f"  ratio 10,000 / 1,000: {ratio:.1f}× (10.0× = linear); goal < {GOAL_VERIFY_S} s for "
          f"10,000: {goal}")
    folder = scratch / "archive-10000"
    verify_archive(folder, since_checkpoint=True)  # writes the checkpoint
    build_archive(folder, 10, nb_bytes, html_bytes, first=10_001, prev=last)
    state = (folder / ".verified.json").read_bytes()
    start = time.perf_counter()
    assert verify_archive(folder, since_checkpoint=True).problems == []
    incremental = time.perf_counter() - start
    (folder / ".verified.json").write_bytes(state)  # the same 10 new entries again
    start = time.perf_counter()
    assert verify_reports(folder, since_checkpoint=True) == []
    part = time.perf_counter() - start
    print(f"  incremental after 10 new entries on 10,000: {incremental:6.3f} s "
          f"({figures[10_000] / incremental:.0f}× faster than full; the ledger and files "
          f"alone {part:5.3f} s)")


def _nbconvert_lab_size(nb: object) -> int | None:
    """Size of NB through nbconvert's "lab" template (what ftkit used before), or None."""
    import os

    from nbconvert import HTMLExporter

    # a virtualenv made with --system-site-packages has nbconvert but not its templates
    shared = Path(sys.base_prefix) / "share" / "jupyter"
    for attempt in range(2):
        try:
            body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
            return len(str(body).encode("utf-8"))
        except Exception:
            if attempt or not shared.is_dir():
                return None
            os.environ["JUPYTER_PATH"] = os.pathsep.join(
                p for p in (os.environ.get("JUPYTER_PATH"), str(shared)) if p)
    return None


def html_figures(notebooks: list[Path]) -> None:
    import nbformat

    print("HTML report size (this renderer / nbconvert lab template of the same notebook):")
    for path in notebooks:
        nb = nbformat.read(str(path), as_version=4)
        runbook = str((nb.metadata.get("ftkit") or {}).get("runbook") or path.stem)
        start = time.perf_counter()
        size = len(notebook_html(nb).encode("utf-8"))
        spent = time.perf_counter() - start
        start = time.perf_counter()
        base = _nbconvert_lab_size(nb)
        base_spent = time.perf_counter() - start
        goal = GOAL_HTML.get(runbook)
        verdict = f"; goal ≤ {goal // 1000} KB: {'met' if size <= goal else 'NOT met'}" \
            if goal else ""
        if base:
            print(f"  {runbook:16} {size / 1000:7.1f} KB in {spent * 1000:4.0f} ms / "
                  f"{base / 1000:7.1f} KB in {base_spent * 1000:4.0f} ms = "
                  f"{size / base:.2f}×{verdict}")
        else:
            print(f"  {runbook:16} {size / 1000:7.1f} KB in {spent * 1000:4.0f} ms "
                  f"(nbconvert lab: n/a){verdict}")


def main(argv: list[str]) -> None:
    import os

    scratch = Path(tempfile.mkdtemp(prefix="ftkit-bench-archive-"))
    # the journals verify_checkpoints looks through: none but the scratch folder's
    os.environ["FTKIT_HOME"] = str(scratch / "home")
    os.environ.pop("FTKIT_WITNESS", None)
    try:
        verify_figures(scratch, [Path(a) for a in argv])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if argv:
        html_figures([Path(a) for a in argv])


if __name__ == "__main__":
    main(sys.argv[1:])
