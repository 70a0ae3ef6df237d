"""Request schemas and their conversion into catalog records, as Consul's agent does it.

Holds the JSON shapes of ``ServiceDefinition``, ``CheckType``, ``CheckDefinition``,
``Session`` and the check-update body, plus the defaulting and validation Consul applies in
``AgentRegisterService`` / ``AgentRegisterCheck`` / ``SessionCreate`` (IDs, names, initial
status, weights, meta rules), raising :class:`~.errors.InvalidInput` with Consul's texts.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ..durations import format_duration
from .catalog import CRITICAL, STATUSES, HealthCheck, Service
from .checks import CheckSpec
from .decode import Field, Schema
from .errors import InvalidInput

CHECK_TYPE_FIELDS = [
    Field("CheckID", "str"),
    Field("Name", "str"),
    Field("Status", "str"),
    Field("Notes", "str"),
    Field("ScriptArgs", "strs", aliases=("args", "script_args")),
    Field("HTTP", "str"),
    Field("H2PING", "str"),
    Field("H2PingUseTLS", "bool", aliases=("h2ping_use_tls",)),
    Field("Header", "header"),
    Field("Method", "str"),
    Field("Body", "str"),
    Field("DisableRedirects", "bool"),
    Field("TCP", "str"),
    Field("TCPUseTLS", "bool"),
    Field("UDP", "str"),
    Field("Interval", "duration"),
    Field("AliasNode", "str"),
    Field("AliasService", "str"),
    Field("DockerContainerID", "str", aliases=("docker_container_id",)),
    Field("Shell", "str"),
    Field("GRPC", "str"),
    Field("GRPCUseTLS", "bool", aliases=("grpc_use_tls",)),
    Field("OSService", "str"),
    Field("TLSServerName", "str", aliases=("tls_server_name",)),
    Field("TLSSkipVerify", "bool", aliases=("tls_skip_verify",)),
    Field("Timeout", "duration"),
    Field("TTL", "duration"),
    Field("SuccessBeforePassing", "int"),
    Field("FailuresBeforeWarning", "int"),
    Field("FailuresBeforeCritical", "int"),
    Field("ProxyHTTP", "str"),
    Field("ProxyGRPC", "str"),
    Field(
        "DeregisterCriticalServiceAfter",
        "duration",
        aliases=("deregister_critical_service_after",),
    ),
    Field("OutputMaxSize", "int"),
    Field("ServiceID", "str", aliases=("service_id",)),
]

CHECK_TYPE = Schema("CheckType", CHECK_TYPE_FIELDS)

CHECK_DEFINITION = Schema(
    "CheckDefinition",
    [
        Field("ID", "str"),
        Field("Token", "str"),
        *[f for f in CHECK_TYPE_FIELDS if f.name != "CheckID"],
    ],
)

WEIGHTS = Schema("Weights", [Field("Passing", "int"), Field("Warning", "int")])
SERVICE_ADDRESS = Schema("ServiceAddress", [Field("Address", "str"), Field("Port", "int")])
LOCALITY = Schema("Locality", [Field("Region", "str"), Field("Zone", "str")])

SERVICE_DEFINITION = Schema(
    "ServiceDefinition",
    [
        Field("Kind", "str"),
        Field("ID", "str"),
        Field("Name", "str"),
        Field("Tags", "strs"),
        Field("Address", "str"),
        Field("TaggedAddresses", "objmap", SERVICE_ADDRESS, aliases=("tagged_addresses",)),
        Field("Meta", "strmap"),
        Field("Port", "int"),
        Field("SocketPath", "str"),
        Field("Check", "obj", CHECK_TYPE),
        Field("Checks", "objs", CHECK_TYPE),
        Field("Weights", "obj", WEIGHTS),
        Field("Token", "str"),
        Field("EnableTagOverride", "bool", aliases=("enable_tag_override",)),
        Field("Locality", "obj", LOCALITY),
        Field("Proxy", "any"),
        Field("Connect", "any"),
    ],
)

SESSION_SERVICE_CHECK = Schema(
    "ServiceCheck", [Field("ID", "str"), Field("Namespace", "str")], strict=False
)

SESSION = Schema(
    "Session",
    [
        Field("ID", "str"),
        Field("Name", "str"),
        Field("Node", "str"),
        Field("LockDelay", "any"),
        Field("Behavior", "str"),
        Field("TTL", "str"),
        Field("NodeChecks", "strs"),
        Field("ServiceChecks", "objs", SESSION_SERVICE_CHECK),
        Field("Checks", "strs"),
        Field("CreateIndex", "uint"),
        Field("ModifyIndex", "uint"),
    ],
    strict=False,
)

CHECK_UPDATE = Schema("checkUpdate", [Field("Status", "str"), Field("Output", "str")])

RAFT_INDEX_FIELDS = [Field("CreateIndex", "uint"), Field("ModifyIndex", "uint")]

NODE_SERVICE = Schema(
    "NodeService",
    [
        Field("Kind", "str"),
        Field("ID", "str"),
        Field("Service", "str"),
        Field("Tags", "strs"),
        Field("Address", "str"),
        Field("TaggedAddresses", "objmap", SERVICE_ADDRESS),
        Field("Meta", "strmap"),
        Field("Port", "int"),
        Field("SocketPath", "str"),
        Field("Weights", "obj", WEIGHTS),
        Field("EnableTagOverride", "bool"),
        Field("Proxy", "any"),
        Field("Connect", "any"),
        Field("PeerName", "str"),
        Field("LocallyRegisteredAsSidecar", "bool"),
        Field("Locality", "obj", LOCALITY),
        *RAFT_INDEX_FIELDS,
    ],
)

HEALTH_CHECK_DEFINITION = Schema(
    "HealthCheckDefinition",
    [
        f
        for f in CHECK_TYPE_FIELDS
        if f.name not in ("CheckID", "Name", "Status", "Notes", "ServiceID", "SuccessBeforePassing")
        and not f.name.startswith(("Failures", "Proxy"))
    ],
)

HEALTH_CHECK = Schema(
    "HealthCheck",
    [
        Field("Node", "str"),
        Field("CheckID", "str"),
        Field("Name", "str"),
        Field("Status", "str"),
        Field("Notes", "str"),
        Field("Output", "str"),
        Field("ServiceID", "str"),
        Field("ServiceName", "str"),
        Field("ServiceTags", "strs"),
        Field("Type", "str"),
        Field("Interval", "str"),
        Field("Timeout", "str"),
        Field("ExposedPort", "int"),
        Field("Definition", "obj", HEALTH_CHECK_DEFINITION),
        Field("PeerName", "str"),
        *RAFT_INDEX_FIELDS,
    ],
)

REGISTER_REQUEST = Schema(
    "RegisterRequest",
    [
        Field("Datacenter", "str"),
        Field("ID", "str"),
        Field("Node", "str"),
        Field("Address", "str"),
        Field("TaggedAddresses", "strmap"),
        Field("NodeMeta", "strmap"),
        Field("Service", "obj", NODE_SERVICE),
        Field("Check", "obj", HEALTH_CHECK),
        Field("Checks", "objs", HEALTH_CHECK),
        Field("SkipNodeUpdate", "bool"),
        Field("PeerName", "str"),
        Field("Locality", "obj", LOCALITY),
        Field("Token", "str"),
        *RAFT_INDEX_FIELDS,
    ],
)

DEREGISTER_REQUEST = Schema(
    "DeregisterRequest",
    [
        Field("Datacenter", "str"),
        Field("Node", "str"),
        Field("ServiceID", "str"),
        Field("CheckID", "str"),
        Field("PeerName", "str"),
        Field("Token", "str"),
    ],
)

_META_KEY = re.compile(r"^[a-zA-Z0-9_-]+$")
META_MAX_PAIRS = 64
META_KEY_MAX = 128
META_VALUE_MAX = 512


def check_spec(fields: dict[str, Any]) -> CheckSpec:
    """Turn decoded CheckType/CheckDefinition fields into a :class:`CheckSpec`."""
    return CheckSpec(
        http=fields.get("HTTP", ""),
        method=fields.get("Method", ""),
        header=fields.get("Header") or {},
        body=fields.get("Body", ""),
        disable_redirects=fields.get("DisableRedirects", False),
        tcp=fields.get("TCP", ""),
        udp=fields.get("UDP", ""),
        grpc=fields.get("GRPC", ""),
        h2ping=fields.get("H2PING", ""),
        os_service=fields.get("OSService", ""),
        script_args=fields.get("ScriptArgs") or [],
        docker_container_id=fields.get("DockerContainerID", ""),
        alias_node=fields.get("AliasNode", ""),
        alias_service=fields.get("AliasService", ""),
        interval=fields.get("Interval", 0),
        timeout=fields.get("Timeout", 0),
        ttl=fields.get("TTL", 0),
        tls_skip_verify=fields.get("TLSSkipVerify", False),
        deregister_critical_service_after=fields.get("DeregisterCriticalServiceAfter", 0),
        output_max_size=fields.get("OutputMaxSize", 0),
        failures_before_warning=fields.get("FailuresBeforeWarning", 0),
        failures_before_critical=fields.get("FailuresBeforeCritical", 0),
    )


def meta_problem(meta: dict[str, str]) -> str | None:
    """``structs.ValidateServiceMetadata``'s error text for ``meta``, or None when valid."""
    if len(meta) > META_MAX_PAIRS:
        return f"Node metadata cannot contain more than {META_MAX_PAIRS} key/value pairs"
    for key, value in meta.items():
        problem = None
        if len(key) > META_KEY_MAX:
            problem = f"Key is too long (limit: {META_KEY_MAX} characters)"
        elif key.startswith("consul-"):
            problem = "Key prefix 'consul-' is reserved for internal use"
        elif not _META_KEY.match(key):
            problem = "Key contains invalid characters"
        elif len(value) > META_VALUE_MAX:
            problem = f"Value is too long (limit: {META_VALUE_MAX} characters)"
        if problem:
            return f"Couldn't load metadata pair ('{key}', '{value}'): {problem}"
    return None


def _validate_meta(meta: dict[str, str]) -> None:
    problem = meta_problem(meta)
    if problem:
        raise InvalidInput(f"Invalid Service Meta: {problem}")


def service_addresses(decoded: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """A service's ``TaggedAddresses`` as ``map[string]structs.ServiceAddress`` encodes it:
    every value has ``Address`` and ``Port``, whatever case the request used."""
    return {
        key: {"Address": value.get("Address", ""), "Port": value.get("Port", 0)}
        for key, value in (decoded or {}).items()
    }


def is_any_address(address: str) -> bool:
    """Whether ``address`` is an unspecified IP (``0.0.0.0``, ``::``), Consul's ``ipaddr.IsAny``."""
    try:
        return ipaddress.ip_address(address.strip("[]")).is_unspecified
    except ValueError:
        return False


def build_service(
    fields: dict[str, Any], node: str
) -> tuple[Service, list[tuple[HealthCheck, CheckSpec]]]:
    """Validate a decoded service definition; return the service and its checks.

    Applies ``AgentRegisterService``'s rules: a name is required, ID defaults to Name, weights
    default to 1/1, checks get ``service:<id>[:n]`` IDs, ``Service '<name>' check`` names and
    an initial ``critical`` status unless one is given.
    """
    name = fields.get("Name", "")
    if not name:
        raise InvalidInput("Missing service name")
    address = fields.get("Address", "")
    if is_any_address(address):
        raise InvalidInput("Invalid service address")
    weights = fields.get("Weights")
    if weights is not None:
        passing, warning = weights.get("Passing", 0), weights.get("Warning", 0)
        if passing < 1:
            raise InvalidInput("Invalid Weights: Passing must be greater than 0")
        if warning < 0:
            raise InvalidInput("Invalid Weights: Warning must be greater or equal than 0")
        weights = {"Passing": passing, "Warning": warning}
    meta = fields.get("Meta") or {}
    _validate_meta(meta)
    port = fields.get("Port", 0)
    if not 0 <= port <= 65535:
        raise InvalidInput(f"Validation failed: invalid port {port}")
    raw_checks: list[dict[str, Any]] = []
    single = fields.get("Check")
    if single:
        raw_checks.append(single)
    raw_checks.extend(c or {} for c in fields.get("Checks") or [])
    specs = []
    for raw in raw_checks:
        spec = check_spec(raw)
        problem = spec.validate()
        if problem:
            raise InvalidInput(f"Invalid check: {problem}")
        status = raw.get("Status", "")
        if status and status not in STATUSES:
            raise InvalidInput("Status for checks must 'passing', 'warning', 'critical'")
        specs.append((raw, spec))
    service_id = fields.get("ID") or name
    service = Service(
        id=service_id,
        service=name,
        tags=list(fields.get("Tags") or []),
        address=address,
        tagged_addresses=service_addresses(fields.get("TaggedAddresses")),
        meta=dict(meta),
        port=port,
        socket_path=fields.get("SocketPath", ""),
        kind=fields.get("Kind", ""),
        weights=weights or {"Passing": 1, "Warning": 1},
        enable_tag_override=fields.get("EnableTagOverride", False),
        locality=fields.get("Locality") or None,
    )
    checks = []
    for number, (raw, spec) in enumerate(specs, start=1):
        check_id = raw.get("CheckID") or f"service:{service_id}"
        if not raw.get("CheckID") and len(specs) > 1:
            check_id += f":{number}"
        check = HealthCheck(
            node=node,
            check_id=check_id,
            name=raw.get("Name") or f"Service '{name}' check",
            status=raw.get("Status") or CRITICAL,
            notes=raw.get("Notes", ""),
            service_id=service_id,
            service_name=name,
            service_tags=list(service.tags),
            type=spec.type(),
            interval=format_duration(spec.interval) if spec.interval else "",
            timeout=format_duration(spec.timeout) if spec.timeout else "",
        )
        checks.append((check, spec))
    return service, checks


def build_check(fields: dict[str, Any], node: str) -> tuple[HealthCheck, CheckSpec]:
    """Validate a decoded ``/v1/agent/check/register`` body (``AgentRegisterCheck``)."""
    name = fields.get("Name", "")
    if not name:
        raise InvalidInput("Missing check name")
    status = fields.get("Status", "")
    if status and status not in STATUSES:
        raise InvalidInput("Bad check status")
    spec = check_spec(fields)
    problem = spec.validate()
    if problem:
        raise InvalidInput(f"Invalid check: {problem}")
    check = HealthCheck(
        node=node,
        check_id=fields.get("ID") or name,
        name=name,
        status=status or CRITICAL,
        notes=fields.get("Notes", ""),
        service_id=fields.get("ServiceID", ""),
        type=spec.type(),
        interval=format_duration(spec.interval),
        timeout=format_duration(spec.timeout),
    )
    return check, spec
