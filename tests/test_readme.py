"""The README runs top to bottom, and documents every command.

- ``test_readme_runs_in_order``: the README's ```sh blocks, in order, as one bash script in
  a temporary folder (``$FTKIT_HOME`` and ``$FTKIT_REPORTS`` temporary, the repository's
  ``examples/`` and ``runbooks/`` linked in), skipping the two set-up ``make`` lines. A line
  whose comment says ``# fails: "words"`` must fail and say the quoted words; every other
  line must succeed.
- ``test_the_two_setup_commands_on_a_fresh_machine``: ``make demo`` then ``make test`` in a
  copy of the repository with the system's ``/usr/bin/python3`` first on the PATH and no
  virtual environment active, as on a fresh Debian or Ubuntu machine.
- ``test_every_command_is_documented``: each ``ftkit`` subcommand appears in the README (in
  the spirit of sqlite-utils' test that fails when a CLI command is undocumented).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ftkit.cli.parser import build_parser

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
SETUP = ("make demo", "make test")
FAILS = re.compile(r'#\s*fails:\s*"([^"]+)"')


def sh_blocks(text: str) -> list[str]:
    """The ```sh blocks of TEXT, in order."""
    return re.findall(r"^```sh\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def commands(block: str) -> list[str]:
    """The commands of a block: continuation lines joined, comment-only lines dropped."""
    out: list[str] = []
    pending = ""
    for line in block.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    assert not pending, f"a README command ends in a backslash: {pending}"
    return out


def script(blocks: list[str]) -> tuple[str, list[str]]:
    """One bash script running BLOCKS' commands in order, and the set-up lines it skipped."""
    lines = ["set -euo pipefail"]
    skipped = []
    for block in blocks:
        for command in commands(block):
            words = command.split("#", 1)[0].strip()
            if words in SETUP:
                skipped.append(words)
                continue
            lines.append(f"echo {shlex.quote('$ ' + words)}")
            expected = FAILS.search(command)
            if expected is None:
                lines.append(command)
                continue
            said = shlex.quote(expected[1])
            lines += [
                f"if said=$( {{ {words} ; }} 2>&1 ); then echo \"$said\"; "
                f"echo {shlex.quote('README: this should have failed: ' + words)} >&2; "
                "exit 97; fi",
                'echo "$said"',
                f'case "$said" in *{said}*) ;; *) echo {shlex.quote("README: the failure did not say: " + expected[1])} >&2; exit 98;; esac',  # noqa: E501
            ]
    return "\n".join(lines) + "\n", skipped


def test_the_readme_script_is_what_the_readme_says() -> None:
    text, skipped = script(sh_blocks(README))
    assert skipped == list(SETUP)
    assert "out.ipynb" not in text  # outputs go to a temporary or the reports folder
    # each block works on systems of its own, so the blocks run in order on a fresh machine
    owner: dict[str, int] = {}
    for number, block in enumerate(sh_blocks(README)):
        for name in re.findall(r"(?:ftkit sim create |-p system sim://)([\w.-]+)", block):
            assert owner.setdefault(name, number) == number, f"{name} is used by two blocks"
        created = re.findall(r"ftkit sim create ([\w.-]+)", block)
        assert len(created) == len(set(created)), f"a block creates {created} twice"
    # the rehearsed failures, the bad change window refused and a Commit refused for want of
    # an approval (Change controls)
    assert text.count("README: this should have failed") == 4


@pytest.mark.slow
@pytest.mark.notebook
def test_readme_runs_in_order(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for name in ("examples", "runbooks"):
        (work / name).symlink_to(REPO / name)
    # `ftkit` and `papermill` are this interpreter's, whatever else is on the PATH (so the
    # kernels they start import this checkout)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for command in ("ftkit", "papermill"):
        (bin_dir / command).write_text(
            f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m {command} "$@"\n',
            encoding="utf-8")
        (bin_dir / command).chmod(0o755)
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    env.update(
        FTKIT_HOME=str(tmp_path / "home"),
        FTKIT_REPORTS=str(tmp_path / "reports"),
        PATH=os.pathsep.join([str(bin_dir), env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
    )
    text, _ = script(sh_blocks(README))
    done = subprocess.run(["bash", "-c", text], cwd=work, env=env, capture_output=True,
                          text=True, check=False, timeout=1800)
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    # the runs were archived where $FTKIT_REPORTS says; nothing landed in the working folder
    assert sorted(p.name for p in work.iterdir()) == ["examples", "runbooks"]
    ledger = (tmp_path / "reports" / "ledger.jsonl").read_text(encoding="utf-8").splitlines()
    # lab1, lab2 (papermill, then reports add), lab4 twice, lab5 twice, cc1 twice; the
    # campaign's three systems and its own record
    assert len(ledger) == 12


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "ftkit") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found += _subcommands(sub, f"{prefix} {name}")
    return found


def test_every_command_is_documented() -> None:
    names = _subcommands(build_parser())
    assert "ftkit sim create" in names and "ftkit reports add" in names
    missing = [name for name in names if name not in README]
    assert not missing, f"the README does not mention: {', '.join(missing)}"


def _fresh_python() -> str:
    python = Path("/usr/bin/python3")
    if not python.is_file():
        pytest.skip("no /usr/bin/python3 on this machine")
    probe = subprocess.run([str(python), "-c", "import sys; print(sys.prefix != sys.base_prefix)"],
                           capture_output=True, text=True, check=False)
    if probe.stdout.strip() != "False":
        pytest.skip("/usr/bin/python3 is a virtual environment's")
    return str(python)


@pytest.mark.slow
def test_the_two_setup_commands_on_a_fresh_machine(tmp_path: Path) -> None:
    """``make demo`` then ``make test`` (a few tests of it) as on a fresh machine: the
    system's python3 first on the PATH, no virtual environment, no .venv yet."""
    _fresh_python()
    if shutil.which("make") is None or shutil.which("git") is None:
        pytest.skip("make and git are needed")
    copy = tmp_path / "ftkit"
    copy.mkdir()
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], cwd=REPO, capture_output=True, check=True)
    for name in filter(None, files.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    env = {key: value for key, value in os.environ.items()
           if key not in ("VIRTUAL_ENV", "PYTHONPATH", "CI", "PYTEST_ADDOPTS", "MAKEFLAGS",
                          "MFLAGS", "MAKELEVEL")}
    env.update(PATH="/usr/bin:/bin", FTKIT_HOME=str(tmp_path / "home"))

    def make(*argv: str) -> str:
        done = subprocess.run(["make", *argv], cwd=copy, env=env, capture_output=True,
                              text=True, check=False, timeout=3600)
        assert done.returncode == 0, f"make {' '.join(argv)}:\n{done.stdout[-4000:]}\n" \
                                     f"{done.stderr[-4000:]}"
        return done.stdout

    out = make("demo")
    assert f"ftkit is {copy}/.venv/bin/ftkit" in out
    assert re.search(r"^outcome: committed", out, flags=re.MULTILINE)
    assert re.search(r"^report:  .*\.html$", out, flags=re.MULTILINE)
    assert out.rstrip().endswith(f"every report so far: {copy}/.venv/bin/ftkit reports list")
    out = make("test", "PYTEST_ARGS=tests/test_lint.py tests/test_cli.py -k help")
    assert re.search(r"\d+ passed", out) and " failed" not in out
