"""``python -m tinygrad_edu``: see `tinygrad_edu.cli`."""

import sys

from .cli import main

sys.exit(main())
