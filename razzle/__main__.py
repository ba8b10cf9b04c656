import sys

from razzle.cli import main

sys.exit(main())
