"""JSON shapes of Consul's API objects, field for field and in Consul's order.

Each function turns a state record into the dict Consul's Go structs would encode to,
honouring ``omitempty`` and Consul's "empty list, not null" fix-ups.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from .catalog import HealthCheck, Node, Service
from .kv import DirEntry
from .sessions import Session


def dir_entry(entry: DirEntry) -> dict[str, Any]:
    """``structs.DirEntry``: ``Session`` only when held, ``Value`` base64 or null."""
    out: dict[str, Any] = {
        "LockIndex": entry.lock_index,
        "Key": entry.key,
        "Flags": entry.flags,
        "Value": None if entry.value is None else base64.b64encode(entry.value).decode("ascii"),
    }
    if entry.session:
        out["Session"] = entry.session
    out["CreateIndex"] = entry.create_index
    out["ModifyIndex"] = entry.modify_index
    return out


def session(s: Session) -> dict[str, Any]:
    """``structs.Session``; ``Checks`` is omitted when empty."""
    out: dict[str, Any] = {
        "ID": s.id,
        "Name": s.name,
        "Node": s.node,
        "LockDelay": s.lock_delay,
        "Behavior": s.behavior,
        "TTL": s.ttl,
        "NodeChecks": s.node_checks,
        "ServiceChecks": s.service_checks,
    }
    if s.checks:
        out["Checks"] = s.checks
    out["CreateIndex"] = s.create_index
    out["ModifyIndex"] = s.modify_index
    return out


def _map_or_null(value: dict[str, str] | None) -> dict[str, str] | None:
    """A Go map field: a copy, or ``null`` for a nil map."""
    return None if value is None else dict(value)


def node(n: Node) -> dict[str, Any]:
    """``structs.Node``."""
    return {
        "ID": n.id,
        "Node": n.name,
        "Address": n.address,
        "Datacenter": n.datacenter,
        "TaggedAddresses": _map_or_null(n.tagged_addresses),
        "Meta": _map_or_null(n.meta),
        "CreateIndex": n.create_index,
        "ModifyIndex": n.modify_index,
    }


def _proxy(s: Service) -> dict[str, Any]:
    return s.proxy or {"Mode": "", "MeshGateway": {}, "Expose": {}}


def node_service(s: Service) -> dict[str, Any]:
    """``structs.NodeService`` (health and catalog node views); Port omitted when 0."""
    out: dict[str, Any] = {}
    if s.kind:
        out["Kind"] = s.kind
    out.update(ID=s.id, Service=s.service, Tags=list(s.tags), Address=s.address)
    if s.tagged_addresses:
        out["TaggedAddresses"] = s.tagged_addresses
    out["Meta"] = dict(s.meta)
    if s.port:
        out["Port"] = s.port
    if s.socket_path:
        out["SocketPath"] = s.socket_path
    out.update(
        Weights=dict(s.weights),
        EnableTagOverride=s.enable_tag_override,
        Proxy=_proxy(s),
        Connect=s.connect or {},
    )
    if s.locality:
        out["Locality"] = s.locality
    out["CreateIndex"] = s.create_index
    out["ModifyIndex"] = s.modify_index
    return out


def agent_service(s: Service, datacenter: str) -> dict[str, Any]:
    """``api.AgentService`` as ``/v1/agent/services`` builds it."""
    out: dict[str, Any] = {}
    if s.kind:
        out["Kind"] = s.kind
    out.update(
        ID=s.id,
        Service=s.service,
        Tags=list(s.tags),
        Meta=dict(s.meta),
        Port=s.port,
        Address=s.address,
    )
    if s.socket_path:
        out["SocketPath"] = s.socket_path
    if s.tagged_addresses:
        out["TaggedAddresses"] = s.tagged_addresses
    out.update(Weights=dict(s.weights), EnableTagOverride=s.enable_tag_override)
    out["Datacenter"] = datacenter
    if s.locality:
        out["Locality"] = s.locality
    return out


def with_content_hash(agent_service_json: dict[str, Any]) -> dict[str, Any]:
    """The ``api.AgentService`` of ``GET /v1/agent/service/<id>`` with its ``ContentHash``
    (before ``Datacenter``, as the struct orders it): a hash of everything else, so it changes
    whenever the service does.  Consul hashes the Go struct (hashstructure), so the values
    differ from Consul's; only their meaning is the same."""
    digest = hashlib.sha256(json.dumps(agent_service_json, sort_keys=True).encode())
    out: dict[str, Any] = {}
    for key, value in agent_service_json.items():
        if key == "Datacenter":
            out["ContentHash"] = digest.hexdigest()[:16]
        out[key] = value
    return out


def health_check(c: HealthCheck) -> dict[str, Any]:
    """``structs.HealthCheck``; ``ServiceTags`` is ``[]`` when there are none."""
    return {
        "Node": c.node,
        "CheckID": c.check_id,
        "Name": c.name,
        "Status": c.status,
        "Notes": c.notes,
        "Output": c.output,
        "ServiceID": c.service_id,
        "ServiceName": c.service_name,
        "ServiceTags": list(c.service_tags),
        "Type": c.type,
        "Interval": c.interval,
        "Timeout": c.timeout,
        "ExposedPort": c.exposed_port,
        "Definition": dict(c.definition),
        "CreateIndex": c.create_index,
        "ModifyIndex": c.modify_index,
    }


def service_node(n: Node, s: Service) -> dict[str, Any]:
    """``structs.ServiceNode`` (``/v1/catalog/service/<name>``)."""
    out: dict[str, Any] = {
        "ID": n.id,
        "Node": n.name,
        "Address": n.address,
        "Datacenter": n.datacenter,
        "TaggedAddresses": _map_or_null(n.tagged_addresses),
        "NodeMeta": _map_or_null(n.meta),
        "ServiceKind": s.kind,
        "ServiceID": s.id,
        "ServiceName": s.service,
        "ServiceTags": list(s.tags),
        "ServiceAddress": s.address,
    }
    if s.tagged_addresses:
        out["ServiceTaggedAddresses"] = s.tagged_addresses
    out.update(
        ServiceWeights=dict(s.weights),
        ServiceMeta=dict(s.meta),
        ServicePort=s.port,
        ServiceSocketPath=s.socket_path,
        ServiceEnableTagOverride=s.enable_tag_override,
        ServiceProxy=_proxy(s),
        ServiceConnect=s.connect or {},
    )
    if s.locality:
        out["ServiceLocality"] = s.locality
    out["CreateIndex"] = s.create_index
    out["ModifyIndex"] = s.modify_index
    return out
