"""`python -m razzle.server [options]` is `razzle serve [options]`."""

import sys

from razzle.cli.serve import main

sys.exit(main())
