"""Leader election with HashiCorp Consul: the helpers behind the tutorial notebooks.

Submodules each do one job (connecting to an agent, registering a service, sessions,
the leader lock, watching, the election recipe, simulated node processes); import from
them directly.  ``elect_helpers.devagent`` is an embedded, in-memory stand-in for
``consul agent -dev``.
"""

__version__ = "0.1.0"
