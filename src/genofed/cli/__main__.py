"""``python -m genofed.cli``."""

import sys

from genofed.cli import main

sys.exit(main())
