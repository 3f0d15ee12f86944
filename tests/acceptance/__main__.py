"""``python -m tests.acceptance``: run ansible-core's integration targets, write docs/acceptance.md."""

import sys

from .harness import main

sys.exit(main())
