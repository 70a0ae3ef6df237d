"""Simulated nodes that are real OS processes.

``python -m elect_helpers.node --name node01 --service monitoring [--ttl 10s]
[--behavior delete] [--lock-delay 15s] [--check-interval 10s] [--bind-check|--no-bind-check]
[--key K] [--events FILE] [--tuned] [--resource URL] [--unfenced-resource URL]`` runs one
node: it serves ``/_health`` on its own loopback port, registers itself as a service with an
HTTP check on that endpoint, campaigns for the leader key and, while leading, writes to the
fenced (and unfenced) resource with its fencing token.  Events go to ``--events`` as JSON
lines (see :mod:`elect_helpers.events`).

Signals: SIGTERM (or SIGINT) = graceful step-down (resign, deregister) and exit 0;
SIGKILL = crash; SIGSTOP then SIGCONT = a frozen process that wakes up still believing it
leads.  Exit status 2 = bad options, 1 = the node could not run (for example the agent is
unreachable), with one line on stderr saying why.

:class:`elect_helpers.cluster.Cluster` starts and controls groups of these processes.
"""
