"""The endpoint table: every path the dev agent serves, with its allowed methods.

Patterns and methods are those of Consul's ``agent/http_register.go`` for the endpoints the
tutorial and python-consul2 use.
"""

from __future__ import annotations

from .api_agent import AgentEndpoint
from .api_catalog import CatalogWriteEndpoint
from .api_common import ApiContext
from .api_health import HealthCatalogEndpoint
from .api_kv import KVEndpoint
from .api_session import SessionEndpoint
from .httpcore import Router

GET = ("GET",)
PUT = ("PUT",)


def build_router(api: ApiContext, http_port: int, client_addr: str) -> Router:
    """Register every endpoint on a fresh router."""
    kv = KVEndpoint(api)
    sessions = SessionEndpoint(api)
    agent = AgentEndpoint(api, http_port, client_addr)
    reads = HealthCatalogEndpoint(api)
    catalog = CatalogWriteEndpoint(api)
    router = Router()
    table = [
        ("/v1/kv/", ("GET", "PUT", "DELETE"), kv.handle),
        ("/v1/session/create", PUT, sessions.create),
        ("/v1/session/destroy/", PUT, sessions.destroy),
        ("/v1/session/renew/", PUT, sessions.renew),
        ("/v1/session/info/", GET, sessions.info),
        ("/v1/session/node/", GET, sessions.node),
        ("/v1/session/list", GET, sessions.list),
        ("/v1/agent/self", GET, agent.self_info),
        ("/v1/agent/members", GET, agent.members),
        ("/v1/agent/services", GET, agent.services),
        ("/v1/agent/service/", GET, agent.service),
        ("/v1/agent/checks", GET, agent.checks),
        ("/v1/agent/service/register", PUT, agent.register_service),
        ("/v1/agent/service/deregister/", PUT, agent.deregister_service),
        ("/v1/agent/maintenance", PUT, agent.node_maintenance),
        ("/v1/agent/service/maintenance/", PUT, agent.service_maintenance),
        ("/v1/agent/check/register", PUT, agent.register_check),
        ("/v1/agent/check/deregister/", PUT, agent.deregister_check),
        ("/v1/agent/check/pass/", PUT, agent.check_pass),
        ("/v1/agent/check/warn/", PUT, agent.check_warn),
        ("/v1/agent/check/fail/", PUT, agent.check_fail),
        ("/v1/agent/check/update/", PUT, agent.check_update),
        ("/v1/health/service/", GET, reads.health_service),
        ("/v1/health/checks/", GET, reads.health_checks),
        ("/v1/health/node/", GET, reads.health_node),
        ("/v1/health/state/", GET, reads.health_state),
        ("/v1/catalog/register", PUT, catalog.register),
        ("/v1/catalog/deregister", PUT, catalog.deregister),
        ("/v1/catalog/datacenters", GET, catalog.datacenters),
        ("/v1/catalog/services", GET, reads.catalog_services),
        ("/v1/catalog/service/", GET, reads.catalog_service),
        ("/v1/catalog/nodes", GET, reads.catalog_nodes),
        ("/v1/catalog/node/", GET, reads.catalog_node),
        ("/v1/status/leader", GET, reads.status_leader),
        ("/v1/status/peers", GET, reads.status_peers),
    ]
    for pattern, methods, handler in table:
        router.add(pattern, methods, handler)
    return router
