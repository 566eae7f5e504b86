"""``python -m wormspace``: the ``wormspace`` command."""

from __future__ import annotations

import sys

from wormspace.cli import main

if __name__ == "__main__":
    sys.exit(main())
