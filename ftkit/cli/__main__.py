"""``python -m ftkit.cli`` is the ``ftkit`` command."""

import sys

from ftkit.cli import main

sys.exit(main())
