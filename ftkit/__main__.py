"""``python -m ftkit`` is the ``ftkit`` command."""

import sys

from ftkit.cli import main

sys.exit(main())
