"""Direct catalog writes: ``Catalog.Register`` and ``Catalog.Deregister`` of Consul's server.

:func:`register` applies ``agent/consul/catalog_endpoint.go :: Register``'s checks in its
order (peer names, datacenter, node name and ID, address unless ``SkipNodeUpdate``, the
service, the checks against the request's node), then ``state/catalog.go ::
ensureRegistrationTxn`` in one store transaction: the node only if the request changes it, the
service only if it differs, then each check.  Everything the state store could refuse is
checked before anything is written, so a refused request leaves the catalog as it was (a raft
apply that fails changes nothing either).  Errors carry Consul's texts; all are 500s there.
"""

from __future__ import annotations

import string
from typing import Any

from ..durations import format_duration
from .catalog import (
    CRITICAL,
    SERF_CHECK_ID,
    Catalog,
    HealthCheck,
    Node,
    Service,
)
from .definitions import check_spec, is_any_address, meta_problem, service_addresses
from .errors import Failure, go_quote
from .store import Store

UUID_HEX_LENGTH = 32


def uuid_problem(text: str) -> str | None:
    """``go-uuid``'s ``ParseUUID`` error text for ``text``, or None for a valid UUID (it
    counts bytes, and ``encoding/hex`` names the first bad byte as ``%#U`` does)."""
    raw = text.encode()
    if len(raw) != UUID_HEX_LENGTH + 4:
        return "uuid string is wrong length"
    if any(raw[i] != ord("-") for i in (8, 13, 18, 23)):
        return "uuid is improperly formatted"
    for byte in raw[0:8] + raw[9:13] + raw[14:18] + raw[19:23] + raw[24:36]:
        char = chr(byte)
        if char not in string.hexdigits:
            shown = f" '{char}'" if char.isprintable() else ""
            return f"encoding/hex: invalid byte: U+{byte:04X}{shown}"
    return None


def _service(fields: dict[str, Any]) -> Service:
    """``servicePreApply``: ID defaults to the name; a name is needed; no "any" address."""
    service_id = fields.get("ID", "")
    name = fields.get("Service", "")
    if not service_id and name:
        service_id = name
    if service_id and not name:
        raise Failure("Must provide service name (Service.Service) when service ID is provided")
    address = fields.get("Address", "")
    if is_any_address(address):
        raise Failure("Invalid service address")
    weights = fields.get("Weights")
    if weights is None or weights.get("Passing", 0) < 1 or weights.get("Warning", 0) < 0:
        weights = {"Passing": 1, "Warning": 1}  # ToServiceNode keeps only valid weights
    return Service(
        id=service_id,
        service=name,
        tags=list(fields.get("Tags") or []),
        address=address,
        tagged_addresses=service_addresses(fields.get("TaggedAddresses")),
        meta=dict(fields.get("Meta") or {}),
        port=fields.get("Port", 0),
        socket_path=fields.get("SocketPath", ""),
        kind=fields.get("Kind", ""),
        weights={"Passing": weights["Passing"], "Warning": weights.get("Warning", 0)},
        enable_tag_override=fields.get("EnableTagOverride", False),
        locality=fields.get("Locality") or None,
    )


def _check(fields: dict[str, Any], node: str) -> HealthCheck:
    """A request check with ``Catalog.Register``'s defaults: the request's node, the name as
    ID (``checkPreApply``) and the type its definition implies."""
    definition = fields.get("Definition") or {}
    spec = check_spec(definition)
    return HealthCheck(
        node=fields.get("Node") or node,
        check_id=fields.get("CheckID") or fields.get("Name", ""),
        name=fields.get("Name", ""),
        status=fields.get("Status") or CRITICAL,
        notes=fields.get("Notes", ""),
        output=fields.get("Output", ""),
        service_id=fields.get("ServiceID", ""),
        type=fields.get("Type") or spec.type(),
        interval=fields.get("Interval") or _duration(spec.interval),
        timeout=fields.get("Timeout") or _duration(spec.timeout),
        exposed_port=fields.get("ExposedPort", 0),
    )


def _duration(ns: int) -> str:
    return format_duration(ns) if ns else ""


def _peer_named(fields: dict[str, Any]) -> bool:
    parts = [fields, fields.get("Service") or {}, fields.get("Check") or {}]
    parts += fields.get("Checks") or []
    return any((part or {}).get("PeerName") for part in parts)


def _changes_node(fields: dict[str, Any], node: Node, existing: Node | None) -> bool:
    """``RegisterRequest.ChangesNode``: a new node, or (without ``SkipNodeUpdate``) any
    node-level field that differs (the name ignoring case; a nil map differs from ``{}``)."""
    if existing is None:
        return True
    if fields.get("SkipNodeUpdate"):
        return False
    return (
        node.id != existing.id
        or node.name.lower() != existing.name.lower()
        or node.address != existing.address
        or node.datacenter != existing.datacenter
        or node.tagged_addresses != existing.tagged_addresses
        or node.meta != existing.meta
    )


def _healthy(catalog: Catalog, node: Node) -> bool:
    """Whether ``node`` has a ``serfHealth`` check that is not critical."""
    serf = catalog.check(node.name, SERF_CHECK_ID)
    return serf is not None and serf.status != CRITICAL


def _name_clash(catalog: Catalog, node: Node, allow_without_id: bool) -> str | None:
    """``ensureNoNodeWithSimilarNameTxn``: another healthy node already holds this name."""
    for other in catalog.all_nodes():
        if other.name.lower() != node.name.lower() or other.id == node.id:
            continue
        if not (other.id == "" and allow_without_id) and _healthy(catalog, other):
            return (
                f"Node name {node.name} is reserved by node {other.id} with name "
                f"{other.name} ({other.address})"
            )
    return None


def _node_write(catalog: Catalog, node: Node) -> Node | None:
    """``ensureNodeTxn``'s refusals; returns the node this ID renames away, if any."""
    if not node.id:
        return None
    holder = catalog.node_with_id(node.id)
    if holder is None:
        clash = _name_clash(catalog, node, allow_without_id=True)
        if clash:
            raise Failure(
                f"failed inserting node: Error while renaming Node ID: {go_quote(node.id)}: {clash}"
            )
        return None
    if holder.name.lower() == node.name.lower():
        return None
    clash = _name_clash(catalog, node, allow_without_id=False)
    if clash:
        raise Failure(
            f"failed inserting node: Error while renaming Node ID: {go_quote(node.id)} "
            f"({node.address}): {clash}"
        )
    return holder


def register(store: Store, catalog: Catalog, local_dc: str, fields: dict[str, Any]) -> None:
    """``PUT /v1/catalog/register`` with a decoded ``RegisterRequest`` body."""
    if _peer_named(fields):
        raise Failure("cannot register requests with PeerName in them")
    if (fields.get("Datacenter") or local_dc) != local_dc:
        raise Failure("No path to datacenter")
    node_name = fields.get("Node", "")
    if not node_name:
        raise Failure("Must provide node")
    node_id = fields.get("ID", "")
    if node_id:
        problem = uuid_problem(node_id)
        if problem:
            raise Failure(f"Bad node ID: {problem}")
    address = fields.get("Address", "")
    if not address and not fields.get("SkipNodeUpdate"):
        raise Failure("Must provide address if SkipNodeUpdate is not set")
    service = _service(fields["Service"]) if fields.get("Service") is not None else None
    raw_checks = list(fields.get("Checks") or [])
    if fields.get("Check") is not None:
        raw_checks.append(fields["Check"])
    checks = [_check(raw or {}, node_name) for raw in raw_checks]
    with store.lock:
        existing_services = {s.id: s for s in catalog.services_of(node_name)}
        for check in checks:
            if check.node.lower() != node_name.lower():
                raise Failure(
                    f"Node '{check.node}' for check '{check.check_id}' doesn't match register "
                    f"request node '{node_name}'"
                )
            other_service = not (service and service.id == check.service_id)
            if check.service_id and other_service and check.service_id not in existing_services:
                raise Failure(
                    f"Unknown service ID '{check.service_id}' for check ID '{check.check_id}'"
                )
        node = Node(
            id=node_id,
            name=node_name,
            address=address,
            datacenter=fields.get("Datacenter") or local_dc,
            tagged_addresses=fields.get("TaggedAddresses"),
            meta=fields.get("NodeMeta"),
        )
        existing = catalog.node_named(node_name)
        write_node = _changes_node(fields, node, existing)
        renamed = _node_write(catalog, node) if write_node else None
        if service is not None:
            problem = meta_problem(service.meta)
            if problem:
                raise Failure(
                    f"failed inserting service: Invalid Service Meta for node {node_name} and "
                    f"serviceID {service.id}: {problem}"
                )
        with store.write() as txn:
            if renamed is not None:
                catalog.deregister_node(txn, renamed.name)
            if write_node:
                catalog.register_node(txn, node)
            if service is not None:
                catalog.ensure_service(txn, node_name, service)
            for check in checks:
                owner = catalog.service_on(node_name, check.service_id)
                if check.service_id and owner is not None:
                    check.service_name, check.service_tags = owner.service, list(owner.tags)
                catalog.ensure_check(txn, check)


def deregister(store: Store, catalog: Catalog, local_dc: str, fields: dict[str, Any]) -> None:
    """``PUT /v1/catalog/deregister``: a service (with its checks), else a check, else the
    whole node (``fsm/commands_ce.go :: applyDeregister``); unknown ones change nothing."""
    node = fields.get("Node", "")
    if not node:
        raise Failure("Must provide node")
    if (fields.get("Datacenter") or local_dc) != local_dc:
        raise Failure("No path to datacenter")
    with store.write() as txn:
        if fields.get("ServiceID"):
            catalog.delete_service(txn, node, fields["ServiceID"])
        elif fields.get("CheckID"):
            catalog.delete_check(txn, node, fields["CheckID"])
        else:
            catalog.deregister_node(txn, node)
