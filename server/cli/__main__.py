"""``python -m touchpoint.cli``: the ``touchpoint`` command."""

import sys

from . import main

sys.exit(main())
