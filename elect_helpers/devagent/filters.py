"""What Consul 1.20 filters with ``?filter`` and ``?node-meta``, and the errors it answers.

The Go types below model, field for field, the structs each endpoint's filter runs on (which
fields exist, their kinds, and which are hidden from go-bexpr by ``bexpr:"-"``): from
``agent/structs/structs.go``, ``connect_proxy_config.go`` and ``api/agent.go`` of Consul
v1.20.6 and ``serf/serf.go`` of serf v0.10.1.  A selector is a Go field name; every JSON key
the agent renders equals its field's name, so rendered objects are filtered directly.

Where each endpoint builds its filter decides its error text (see FIDELITY.md):

* catalog and health reads (``agent/consul/{catalog,health}_endpoint.go``) and
  ``/v1/agent/services`` / ``members`` call ``bexpr.CreateFilter`` with the element type, so
  any bad expression is a 500 ``Failed to create boolean expression evaluator: <error>``;
* ``/v1/agent/checks`` passes no type: only syntax is checked up front, selectors are
  checked against the first check evaluated, and that error is not wrapped;
* streamed ``/v1/health/service`` reads (``agent/rpcclient/health/view.go``) validate against
  ``CheckServiceNode`` with an unwrapped error, and turn each ``?node-meta`` pair into the
  expression ``"<value>" in Node.Meta.<key>`` (a substring test, unlike the exact match of the
  other reads).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .bexpr import (
    BOOL,
    INT,
    STRING,
    BexprError,
    Evaluator,
    GoType,
    IPAddr,
    Map,
    NilPointer,
    Prim,
    Ptr,
    Slice,
    filter_items,
    filter_values,
    struct,
)
from .errors import Failure

STRINGS = Slice(STRING)
STRING_MAP = Map(STRING)
OPAQUE_MAP = Map(None)  # map[string]interface{}: keys only

WEIGHTS = struct("Weights", Passing=INT, Warning=INT)
SERVICE_ADDRESS = struct("ServiceAddress", Address=STRING, Port=INT)
MESH_GATEWAY = struct("MeshGatewayConfig", Mode=STRING)
EXPOSE_PATH = struct(
    "ExposePath",
    ListenerPort=INT,
    Path=STRING,
    LocalPathPort=INT,
    Protocol=STRING,
    ParsedFromCheck=BOOL,
)
EXPOSE = struct("ExposeConfig", Checks=BOOL, Paths=Slice(EXPOSE_PATH))
TRANSPARENT_PROXY = struct("TransparentProxyConfig", OutboundListenerPort=INT, DialedDirectly=BOOL)
ACCESS_LOGS = struct(
    "AccessLogsConfig",
    Enabled=BOOL,
    DisableListenerLogs=BOOL,
    Type=STRING,
    Path=STRING,
    JSONFormat=STRING,
    TextFormat=STRING,
)
ENVOY_EXTENSION = struct(
    "EnvoyExtension", Name=STRING, Required=BOOL, ConsulVersion=STRING, EnvoyVersion=STRING
)
UPSTREAM = struct(
    "Upstream",
    DestinationType=STRING,
    DestinationNamespace=STRING,
    DestinationPartition=STRING,
    DestinationPeer=STRING,
    DestinationName=STRING,
    Datacenter=STRING,
    LocalBindAddress=STRING,
    LocalBindPort=INT,
    LocalBindSocketPath=STRING,
    LocalBindSocketMode=STRING,
    MeshGateway=MESH_GATEWAY,
)
CONNECT_PROXY = struct(
    "ConnectProxyConfig",
    EnvoyExtensions=Slice(ENVOY_EXTENSION),
    DestinationServiceName=STRING,
    DestinationServiceID=STRING,
    LocalServiceAddress=STRING,
    LocalServicePort=INT,
    LocalServiceSocketPath=STRING,
    Mode=STRING,
    Upstreams=Slice(UPSTREAM),
    MeshGateway=MESH_GATEWAY,
    Expose=EXPOSE,
    TransparentProxy=TRANSPARENT_PROXY,
    AccessLogs=ACCESS_LOGS,
)
SERVICE_CONNECT = struct("ServiceConnect", Native=BOOL)

NODE = struct(
    "structs.Node",
    ID=STRING,
    Node=STRING,
    Address=STRING,
    Datacenter=STRING,
    Partition=STRING,
    PeerName=STRING,
    TaggedAddresses=STRING_MAP,
    Meta=STRING_MAP,
)
NODE_SERVICE = struct(
    "structs.NodeService",
    Kind=STRING,
    ID=STRING,
    Service=STRING,
    Tags=STRINGS,
    Address=STRING,
    TaggedAddresses=Map(SERVICE_ADDRESS),
    Meta=STRING_MAP,
    Port=INT,
    SocketPath=STRING,
    Weights=Ptr(WEIGHTS),
    EnableTagOverride=BOOL,
    Proxy=CONNECT_PROXY,
    Connect=SERVICE_CONNECT,
    PeerName=STRING,
)
SERVICE_NODE = struct(
    "structs.ServiceNode",
    ID=STRING,
    Node=STRING,
    Address=STRING,
    Datacenter=STRING,
    TaggedAddresses=STRING_MAP,
    NodeMeta=STRING_MAP,
    ServiceKind=STRING,
    ServiceID=STRING,
    ServiceName=STRING,
    ServiceTags=STRINGS,
    ServiceAddress=STRING,
    ServiceTaggedAddresses=Map(SERVICE_ADDRESS),
    ServiceWeights=WEIGHTS,
    ServiceMeta=STRING_MAP,
    ServicePort=INT,
    ServiceSocketPath=STRING,
    ServiceEnableTagOverride=BOOL,
    ServiceProxy=CONNECT_PROXY,
    ServiceConnect=SERVICE_CONNECT,
    PeerName=STRING,
)
HEALTH_CHECK = struct(
    "structs.HealthCheck",
    Node=STRING,
    CheckID=STRING,
    Name=STRING,
    Status=STRING,
    Notes=STRING,
    Output=STRING,
    ServiceID=STRING,
    ServiceName=STRING,
    ServiceTags=STRINGS,
    Type=STRING,
    Interval=STRING,
    Timeout=STRING,
    ExposedPort=INT,
    PeerName=STRING,
)
CHECK_SERVICE_NODE = struct(
    "structs.CheckServiceNode",
    Node=Ptr(NODE),
    Service=Ptr(NODE_SERVICE),
    Checks=Slice(Ptr(HEALTH_CHECK)),
)
AGENT_PROXY = struct(
    "api.AgentServiceConnectProxyConfig",
    EnvoyExtensions=Slice(ENVOY_EXTENSION),
    DestinationServiceName=STRING,
    DestinationServiceID=STRING,
    LocalServiceAddress=STRING,
    LocalServicePort=INT,
    LocalServiceSocketPath=STRING,
    Mode=STRING,
    TransparentProxy=Ptr(TRANSPARENT_PROXY),
    Upstreams=Slice(UPSTREAM),
    MeshGateway=MESH_GATEWAY,
    Expose=EXPOSE,
    AccessLogs=Ptr(ACCESS_LOGS),
)
AGENT_SERVICE = struct(
    "api.AgentService",
    Kind=STRING,
    ID=STRING,
    Service=STRING,
    Tags=STRINGS,
    Meta=STRING_MAP,
    Port=INT,
    Address=STRING,
    SocketPath=STRING,
    TaggedAddresses=Map(SERVICE_ADDRESS),
    Weights=WEIGHTS,
    EnableTagOverride=BOOL,
    Proxy=Ptr(AGENT_PROXY),
    Connect=Ptr(struct("api.AgentServiceConnect", Native=BOOL)),
    PeerName=STRING,
)
UINT8 = Prim("uint8")
SERF_MEMBER = struct(
    "serf.Member",
    Name=STRING,
    Addr=IPAddr(),
    Port=Prim("uint16"),
    Tags=STRING_MAP,
    Status=INT,
    ProtocolMin=UINT8,
    ProtocolMax=UINT8,
    ProtocolCur=UINT8,
    DelegateMin=UINT8,
    DelegateMax=UINT8,
    DelegateCur=UINT8,
)

_WRAP = "Failed to create boolean expression evaluator: "


class Filter:
    """One request's ``?filter`` for one element type, created as Consul creates it.

    ``wrapped``: the creation error carries ``CreateFilter``'s prefix (False for the streamed
    health view, which calls ``CreateEvaluatorForType``).  ``lazy``: validation waits for the
    first element, as for ``/v1/agent/checks`` (``CreateFilter(expr, nil, nil)``).
    """

    def __init__(
        self, expression: str, element: GoType, wrapped: bool = True, lazy: bool = False
    ) -> None:
        """Parse (and unless ``lazy`` validate) now; raises :class:`Failure` with Consul's text."""
        self.element = element
        self.lazy = lazy
        try:
            self.evaluator = Evaluator(expression, None if lazy else element)
        except BexprError as error:
            raise Failure((_WRAP if wrapped else "") + error.message) from None

    def _ready(self) -> Evaluator:
        if self.lazy and self.evaluator.element is None:
            try:
                self.evaluator.bind(self.element)
            except BexprError as error:
                raise Failure(error.message) from None
        return self.evaluator

    def items(self, items: Sequence[Any]) -> list[Any]:
        """Keep the JSON-rendered elements that match (``Filter.Execute`` on a slice)."""
        if not items:
            return []
        return _guard(lambda: filter_items(self._ready(), items))

    def values(self, items: Mapping[str, Any]) -> dict[str, Any]:
        """Keep the entries whose JSON-rendered values match (``Execute`` on a map)."""
        if not items:
            return {}
        return _guard(lambda: filter_values(self._ready(), items))


def _guard(run: Any) -> Any:
    try:
        return run()
    except NilPointer as nil:
        raise Failure(
            f"The filter selects through {nil.selector}, which is null here; Consul 1.20 "
            "panics on this (go-bexpr dereferences the nil pointer) and drops the connection. "
            f"Test {nil.selector} in a separate request, or leave that selector out"
        ) from None


def optional_filter(
    expression: str, element: GoType, wrapped: bool = True, lazy: bool = False
) -> Filter | None:
    """A :class:`Filter`, or None for an absent/empty ``?filter`` (go-bexpr's nil filter)."""
    return Filter(expression, element, wrapped, lazy) if expression else None


def filter_members(expression: str, members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``/v1/agent/members`` with ``?filter`` (on ``serf.Member``; none when empty)."""
    found = optional_filter(expression, SERF_MEMBER)
    return found.items(members) if found is not None else members


def node_meta_pairs(values: Sequence[str]) -> dict[str, str]:
    """``parseMetaFilter``: each ``key:value`` (split at the first colon; no colon, value "").

    A repeated key keeps its last value, as the Go map assignment does.
    """
    pairs: dict[str, str] = {}
    for raw in values:
        key, _, value = raw.partition(":")
        pairs[key] = value
    return pairs


def satisfies_meta(meta: Mapping[str, str] | None, filters: Mapping[str, str]) -> bool:
    """``structs.SatisfiesMetaFilters``: every filter key present with exactly that value
    (a node without meta has none)."""
    present = meta or {}
    return all(key in present and present[key] == value for key, value in filters.items())


def streamed_meta_filters(filters: Mapping[str, str]) -> list[Filter]:
    """The streamed health view's ``"<value>" in Node.Meta.<key>`` evaluators, in order.

    Built by the same string formatting as ``newFilterEvaluator``, so a key or value that
    breaks the expression gets go-bexpr's (unwrapped) parse error, as there.
    """
    return [
        Filter(f'"{value}" in Node.Meta.{key}', CHECK_SERVICE_NODE, wrapped=False)
        for key, value in filters.items()
    ]
