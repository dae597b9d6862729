"""`python -m pneumo predict ...`: the `pneumo` command in a checkout (pneumo.cli)."""

import sys

from pneumo.cli import main

sys.exit(main())
