"""The repository explains itself: what it cites is in it, and its pointers lead somewhere.

- No tracked file cites the outside briefing that the domain facts came from (the brief's
  section marks, ``SPEC invariant N``, a ``shared/`` briefing file): they point into
  ``docs/`` instead (docs/DOMAIN.md).
- Every ``docs/NAME.md#anchor`` written in a tracked file, and every relative link of a
  Markdown file, names a file that exists and, with an anchor, a heading of it (GitHub's
  anchors).
- Every test that docs/ or the README cites as ``tests/FILE.py::test_name`` exists, and
  every path they name in backticks exists.
- docs/DESIGN.md's module table names every module of ``ftkit/``.

Each check is a function of a folder and its files, so it is proved here on a small tree
that breaks it, before it is run on the repository.
"""

from __future__ import annotations

import ast
import functools
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve().relative_to(REPO).as_posix()

#: Citations of the briefing that lives outside the repository.
FORBIDDEN = re.compile(
    r"SPEC[ ]§|SPEC invariant|shared/[S]PEC|\.\./shared|(?<![\w/.-])shared/[A-Z][A-Z-]*\.md"
)
LEAD_REWRITING: frozenset[str] = frozenset()  # files exempt from the citation check: none

DOC_REF = re.compile(r"(?<![\w/.-])(docs/[\w./-]+?\.md)(?:#([\w-]+))?")
MD_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
TEST_REF = re.compile(r"(tests/[\w/]+\.py)::(\w+)")
CODE_PATH = re.compile(
    r"`((?:ftkit|widgets|tests|runbooks|examples|benchmarks|docs)/[\w./-]*)`"
)
FENCE = re.compile(r"^(```|~~~)")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def tracked_files(root: Path) -> list[str]:
    """The files git tracks under ROOT (read-only); without git, every file outside
    hidden, build and output folders."""
    try:
        done = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True,
                              check=True)
    except (OSError, subprocess.CalledProcessError):
        skip = {"__pycache__", "reports", "node_modules"}
        return sorted(
            path.relative_to(root).as_posix() for path in root.rglob("*")
            if path.is_file() and not any(
                part.startswith(".") or part in skip or part.endswith(".egg-info")
                for part in path.relative_to(root).parts))
    return sorted(name for name in done.stdout.decode().split("\0") if name)


def text_of(root: Path, name: str) -> str | None:
    """The file's text, or None for a binary or missing file (read-only)."""
    try:
        data = (root / name).read_bytes()
    except OSError:
        return None
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def texts(root: Path, names: Iterable[str]) -> Iterable[tuple[str, str]]:
    for name in names:
        text = text_of(root, name)
        if text is not None:
            yield name, text


def citations(root: Path, names: Iterable[str]) -> list[str]:
    """``file:line: text`` of every citation of the outside briefing (read-only)."""
    found = []
    for name, text in texts(root, names):
        for number, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    return found


def prose_lines(text: str) -> Iterable[tuple[int, str]]:
    """A Markdown text's lines outside fenced code blocks, numbered from 1."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to
    hyphens (``## 7. Secrets stay secret`` → ``7-secrets-stay-secret``)."""
    text = re.sub(r"`|\*\*|__", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown text, a repeated one with ``-1``, ``-2``…"""
    seen: dict[str, int] = {}
    out = set()
    for _number, line in prose_lines(text):
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def _target_problem(root: Path, path: Path, anchor: str | None) -> str | None:
    """Why a link to PATH (and ANCHOR in it) leads nowhere, or None."""
    if not path.exists():
        return "no such file"
    if (anchor and path.suffix == ".md"
            and anchor not in anchors(path.read_text(encoding="utf-8"))):
        return f"{path.relative_to(root).as_posix()} has no heading #{anchor}"
    return None


def broken_links(root: Path, names: Iterable[str]) -> list[str]:
    """``file:line: link: why`` of every pointer that leads nowhere (read-only): each
    ``docs/NAME.md#anchor`` in any text file (from the repository root) and each relative
    Markdown link of a ``.md`` file (from that file's folder)."""
    found = []
    for name, text in texts(root, names):
        for number, line in enumerate(text.splitlines(), 1):
            for match in DOC_REF.finditer(line):
                why = _target_problem(root, root / match.group(1), match.group(2))
                if why:
                    found.append(f"{name}:{number}: {match.group(0)}: {why}")
        if not name.endswith(".md"):
            continue
        for number, line in prose_lines(text):
            for match in MD_LINK.finditer(line):
                target = match.group(1)
                if SCHEME.match(target):
                    continue
                where, _, anchor = target.partition("#")
                path = (root / name).parent / where if where else root / name
                why = _target_problem(root, path, anchor or None)
                if why:
                    found.append(f"{name}:{number}: {target}: {why}")
    return found


@functools.cache
def _test_names(path: Path) -> frozenset[str]:
    """The functions a test file defines (parsed once per file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(node.name for node in ast.walk(tree)
                     if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))


def stale_references(root: Path, names: Iterable[str]) -> list[str]:
    """``file: reference`` of every cited test that does not exist and every backticked
    path that does not exist, in the given Markdown files (read-only)."""
    found = []
    for name, text in texts(root, names):
        for test_file, test in sorted(set(TEST_REF.findall(text))):
            path = root / test_file
            if not path.is_file() or test not in _test_names(path):
                found.append(f"{name}: {test_file}::{test}")
        for code_path in sorted(set(CODE_PATH.findall(text))):
            if not (root / code_path).exists():
                found.append(f"{name}: {code_path}")
    return found


def undocumented_modules(root: Path) -> list[str]:
    """The modules and subpackages of ``ftkit/`` that docs/DESIGN.md's module table does
    not name (read-only)."""
    design = (root / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    table = design.split("## Modules", 1)[-1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(ftkit/[\w/]+(?:\.py)?/?)`", table))
    package = root / "ftkit"
    wanted = [f"ftkit/{path.name}" for path in sorted(package.glob("*.py"))
              if path.name not in ("__init__.py", "__main__.py")]
    wanted += [f"ftkit/{path.name}/" for path in sorted(package.iterdir())
               if path.is_dir() and (path / "__init__.py").exists()]
    return [module for module in wanted if module not in named]


def _markdown(names: Iterable[str]) -> list[str]:
    return [name for name in names if name == "README.md" or
            (name.startswith("docs/") and name.endswith(".md"))]


# --- each check, proved on a small tree that breaks it ----------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "A.md").write_text(
        "# A\n\n## 7. Secrets stay `secret`\n\n## Twice\n\n## Twice\n\n```\n## not a heading\n"
        "[in code](nowhere.md)\n```\n\nSee [B](B.md), [here](#twice-1), [gone](C.md),\n"
        "[bad](#not-a-heading), [web](https://example.org/x.md#y).\n"
        "It cites `tests/test_x.py::test_there`, `tests/test_x.py::test_gone`,\n"
        "`ftkit/missing.py` and `docs/A.md`.\n", encoding="utf-8")
    (tmp_path / "docs" / "B.md").write_text("# B\n", encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "def test_there():\n    assert True\n", encoding="utf-8")
    (tmp_path / "code.py").write_text(
        '"""See docs/A.md#7-secrets-stay-secret and docs/A.md#twice, not docs/A.md#nope\n'
        'nor docs/Z.md; (SPEC \u00a74) and SPEC invariant 7 are gone."""\n', encoding="utf-8")
    (tmp_path / "notes.md").write_text("As ../shared/" + "SPEC.md and shared/STYLE.md say.\n",
                                       encoding="utf-8")
    return tmp_path


FILES = ["code.py", "docs/A.md", "docs/B.md", "notes.md", "tests/test_x.py"]


def test_slugs_are_githubs() -> None:
    assert slug("7. Secrets stay `secret`") == "7-secrets-stay-secret"
    assert slug("Production side and Upgrade side") == "production-side-and-upgrade-side"
    assert slug("PrepareMerge checks") == "preparemerge-checks"
    assert slug("Faults: where / why") == "faults-where--why"


def test_the_checks_find_what_they_look_for(tree: Path) -> None:
    assert citations(tree, FILES) == [
        "code.py:2: nor docs/Z.md; (SPEC \u00a74) and SPEC invariant 7 are gone.\"\"\"",
        "notes.md:1: As ../shared/" + "SPEC.md and shared/STYLE.md say.",
    ]
    assert broken_links(tree, FILES) == [
        "code.py:1: docs/A.md#nope: docs/A.md has no heading #nope",
        "code.py:2: docs/Z.md: no such file",
        "docs/A.md:14: C.md: no such file",
        "docs/A.md:15: #not-a-heading: docs/A.md has no heading #not-a-heading",
    ]
    assert stale_references(tree, _markdown(FILES)) == [
        "docs/A.md: tests/test_x.py::test_gone",
        "docs/A.md: ftkit/missing.py",
    ]


def test_the_tree_is_listed_without_git(tree: Path) -> None:
    (tree / ".hidden").mkdir()
    (tree / ".hidden" / "x.md").write_text("SPEC \u00a71", encoding="utf-8")
    assert tracked_files(tree) == FILES  # not a repository: hidden folders left out


# --- the repository ----------------------------------------------------------------------


def test_nothing_cites_the_outside_briefing() -> None:
    names = [name for name in tracked_files(REPO)
             if name != THIS and name not in LEAD_REWRITING]
    assert names, "no tracked file found"
    found = citations(REPO, names)
    assert not found, "cite docs/DOMAIN.md instead:\n" + "\n".join(found)


def test_every_docs_pointer_and_markdown_link_leads_somewhere() -> None:
    found = broken_links(REPO, [name for name in tracked_files(REPO) if name != THIS])
    assert not found, "\n".join(found)


def test_docs_cite_tests_and_paths_that_exist() -> None:
    markdown = _markdown(tracked_files(REPO))
    assert "docs/DOMAIN.md" in markdown
    found = stale_references(REPO, markdown)
    assert not found, "\n".join(found)


def test_the_design_notes_name_every_module() -> None:
    missing = undocumented_modules(REPO)
    assert not missing, "add a row to docs/DESIGN.md's module table for: " + ", ".join(missing)
