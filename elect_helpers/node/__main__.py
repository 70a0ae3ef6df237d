"""``python -m elect_helpers.node --name node01 --service monitoring ...``: run one node."""

import sys

from elect_helpers.node.options import parse_options

options = parse_options()  # bad options exit 2 before the Consul client is even imported

from elect_helpers.node.runner import run  # noqa: E402

sys.exit(run(options))
