"""`python -m app`: the same as the `overcommit` command."""

import sys

from app.cli import main

sys.exit(main())
