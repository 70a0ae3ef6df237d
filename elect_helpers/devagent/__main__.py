"""``python -m elect_helpers.devagent``: run the embedded dev agent in the foreground."""

import sys

from .cli import main

sys.exit(main())
