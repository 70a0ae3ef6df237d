"""Maintenance mode: the agent's critical "faux" checks for its node or one of its services.

Follows ``agent/agent.go :: EnableNodeMaintenance, EnableServiceMaintenance`` and their
``Disable…`` twins: enabling registers a critical agent check (``_node_maintenance``, or
``_service_maintenance:<service ID>`` bound to the service) whose notes are the reason or
Consul's default text, with no output and nothing running it; enabling again keeps the first
reason; disabling removes the check and is a no-op when it is not there.  Because the check is
critical it keeps the node's (or service's) instances out of ``?passing`` health reads, but it
invalidates only sessions bound to that very check, never sessions bound to ``serfHealth``.
"""

from __future__ import annotations

from .catalog import CRITICAL, HealthCheck
from .errors import NotFound, go_quote
from .local import LocalAgent

NODE_MAINT_CHECK_ID = "_node_maintenance"
SERVICE_MAINT_PREFIX = "_service_maintenance:"
NODE_MAINT_NAME = "Node Maintenance Mode"
SERVICE_MAINT_NAME = "Service Maintenance Mode"
DEFAULT_NODE_REASON = (
    "Maintenance mode is enabled for this node, but no reason was provided. "
    "This is a default message."
)
DEFAULT_SERVICE_REASON = (
    "Maintenance mode is enabled for this service, but no reason was provided. "
    "This is a default message."
)


def service_maint_check_id(service_id: str) -> str:
    """``serviceMaintCheckID``."""
    return SERVICE_MAINT_PREFIX + service_id


def enable_node(local: LocalAgent, node: str, reason: str) -> None:
    """``PUT /v1/agent/maintenance?enable=true&reason=…``."""
    if NODE_MAINT_CHECK_ID in local.checks():
        return
    local.add_check(
        HealthCheck(
            node=node,
            check_id=NODE_MAINT_CHECK_ID,
            name=NODE_MAINT_NAME,
            status=CRITICAL,
            notes=reason or DEFAULT_NODE_REASON,
        ),
        None,
    )


def disable_node(local: LocalAgent) -> None:
    """``PUT /v1/agent/maintenance?enable=false``."""
    if NODE_MAINT_CHECK_ID in local.checks():
        local.remove_check(NODE_MAINT_CHECK_ID)


def _require_service(local: LocalAgent, service_id: str) -> None:
    """``vetServiceUpdateWithAuthorizer``: the 404 for a service this agent does not have."""
    if service_id not in local.services():
        raise NotFound(
            f"Unknown service ID {go_quote(service_id)}. Ensure that the service ID is "
            "passed, not the service name."
        )


def enable_service(local: LocalAgent, node: str, service_id: str, reason: str) -> None:
    """``PUT /v1/agent/service/maintenance/<id>?enable=true&reason=…``."""
    _require_service(local, service_id)
    check_id = service_maint_check_id(service_id)
    if check_id in local.checks():
        return
    local.add_check(
        HealthCheck(
            node=node,
            check_id=check_id,
            name=SERVICE_MAINT_NAME,
            status=CRITICAL,
            notes=reason or DEFAULT_SERVICE_REASON,
            service_id=service_id,
        ),
        None,
    )


def disable_service(local: LocalAgent, service_id: str) -> None:
    """``PUT /v1/agent/service/maintenance/<id>?enable=false``."""
    _require_service(local, service_id)
    check_id = service_maint_check_id(service_id)
    if check_id in local.checks():
        local.remove_check(check_id)
