"""``/v1/catalog/register``, ``/v1/catalog/deregister`` and ``/v1/catalog/datacenters``.

Follows ``agent/catalog_endpoint.go``: the body is decoded strictly (``Request decode
failed: …`` on errors), the datacenter defaults to the agent's, the server's refusals are
500s with its text (see :mod:`.registration`), and success answers ``true`` without
``X-Consul-Index`` (writes do not call ``setMeta``).
"""

from __future__ import annotations

from .api_agent import decode_body
from .api_common import ApiContext
from .definitions import DEREGISTER_REQUEST, REGISTER_REQUEST
from .httpcore import Request, Response
from .registration import deregister, register


class CatalogWriteEndpoint:
    """Handlers for the catalog's write endpoints and its datacenter list."""

    def __init__(self, api: ApiContext) -> None:
        self.api = api

    def register(self, request: Request) -> Response:
        """``PUT /v1/catalog/register``."""
        fields = decode_body(request, REGISTER_REQUEST)
        state = self.api.state
        register(state.store, state.catalog, state.datacenter, fields)
        return self.api.json(request, True)

    def deregister(self, request: Request) -> Response:
        """``PUT /v1/catalog/deregister``."""
        fields = decode_body(request, DEREGISTER_REQUEST)
        state = self.api.state
        deregister(state.store, state.catalog, state.datacenter, fields)
        return self.api.json(request, True)

    def datacenters(self, request: Request) -> Response:
        """``GET /v1/catalog/datacenters``: the known datacenters, nearest first; a dev agent
        without WAN federation knows only its own (``Catalog.ListDatacenters``)."""
        self.api.parse(request)
        return self.api.json(request, [self.api.state.datacenter])
