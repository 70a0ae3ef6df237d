"""An embedded, in-memory stand-in for ``consul agent -dev`` speaking Consul's HTTP API.

``DevAgent`` runs it on a thread of this process; ``DevAgentProcess`` runs
``python -m elect_helpers.devagent`` as a child process.  Both are context managers exposing
``address`` (``host:port``) and ``url``.  The state machine (``state``, ``kv``, ``sessions``,
``catalog``, ``local``, ``checks``) has no HTTP in it; the HTTP layer is ``httpcore``,
``routes`` and the ``api_*`` modules.
"""

from .process import DevAgentProcess
from .server import DevAgent

__all__ = ["DevAgent", "DevAgentProcess"]
