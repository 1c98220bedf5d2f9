"""Prepare the example site on this host: orderdesk 1.0.0 installed, 2.0.0 staged.

    python examples/host/prepare.py [SITE]       # default: examples/host/site.toml

Builds both wheels offline into the site's staging folder, creates the system tree (a
virtual environment with orderdesk 1.0.0, installed from the local wheel) unless it exists,
and the data directory. Changes nothing else; the driver brings the site up on first use.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_wheels import build_wheel  # noqa: E402

from ftkit.host.site import load_site  # noqa: E402


def prepare(site_file: Path) -> None:
    site = load_site(site_file.resolve())
    wheels = [build_wheel(version, site.staging) for version in ("1.0.0", "2.0.0")]
    if not (site.tree / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(site.tree)], check=True)
        subprocess.run([str(site.tree / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "--no-index", "--no-deps",
                        str(wheels[0])], check=True)
        # orderdesk needs no setuptools: a leaner tree copies faster at split and commit
        subprocess.run([str(site.tree / "bin" / "python"), "-m", "pip", "uninstall", "--quiet",
                        "--yes", "setuptools"], check=False)
    site.data.mkdir(parents=True, exist_ok=True)
    print(f"{site.tree}: orderdesk 1.0.0; staged in {site.staging}: "
          + ", ".join(w.name for w in wheels))


if __name__ == "__main__":
    prepare(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "site.toml")
