"""``python3 -m pointstream send ...`` (see :mod:`pointstream.cli`)."""

import sys

from .cli import main

sys.exit(main())
