"""``/v1/agent/...``: self, services, checks, service and check (de)registration, TTL updates.

Follows ``agent/agent_endpoint.go``: strict, case-insensitive body decoding with
``Request decode failed: ...`` on errors, Consul's 400/404/500 texts, and empty 200 bodies on
success.  Every change is pushed to the catalog before the response, like ``syncChanges``.
"""

from __future__ import annotations

from typing import Any

from ..durations import format_duration
from . import maintenance, render
from .api_common import ApiContext, json_prefix
from .catalog import CRITICAL, PASSING, SERVICES, STATUSES, WARNING
from .decode import DecodeError, Schema, decode_struct, parse_body
from .definitions import (
    CHECK_DEFINITION,
    CHECK_UPDATE,
    SERVICE_DEFINITION,
    build_check,
    build_service,
)
from .errors import InvalidInput, go_quote
from .filters import AGENT_SERVICE, HEALTH_CHECK, filter_members, optional_filter
from .gossip import DEV_GOSSIP_INTERVAL, GOSSIP_NODES, RETRANSMIT_MULT
from .httpcore import PLAIN, BodyTooLarge, Deferred, Request, Response
from .startup import GRPC_PORT, SERVER_PORT
from .state import CONSUL_VERSION, SERF_LAN_PORT
from .store import QueryResult, Topic

BUILD_DATE = "2024-10-14T19:44:41Z"
GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")
LEADER_ADDR = f"127.0.0.1:{SERVER_PORT}"


def decode_body(request: Request, schema: Schema) -> dict[str, Any]:
    """Strictly decode the JSON body; 400 ``Request decode failed: <err>`` on failure."""
    try:
        body = request.body()
    except BodyTooLarge as too_large:
        body = json_prefix(too_large)
    try:
        return decode_struct(parse_body(body), schema)
    except DecodeError as error:
        raise InvalidInput(f"Request decode failed: {error}") from None


def server_serf_tags(datacenter: str, node_id: str) -> dict[str, str]:
    """The LAN serf tags of a dev server, as ``/v1/agent/self`` ``Member`` and
    ``/v1/agent/members`` show them (``agent/consul/server_serf.go :: setupSerfConfig``: role,
    dc, segment, id, vsn/vsn_min/vsn_max, raft_vsn, build, port, grpc_port (dev serves gRPC),
    acls "0" with ACLs off, the ft_fs/ft_si feature flags and wan_join_port)."""
    return {
        "acls": "0",
        "build": f"{CONSUL_VERSION}:embedded",
        "dc": datacenter,
        "ft_fs": "1",
        "ft_si": "1",
        "grpc_port": str(GRPC_PORT),
        "id": node_id,
        "port": str(SERVER_PORT),
        "raft_vsn": "3",
        "role": "consul",
        "segment": "",
        "vsn": "2",
        "vsn_max": "3",
        "vsn_min": "2",
        "wan_join_port": "8302",
    }


def serf_member(node: str, tags: dict[str, str]) -> dict[str, Any]:
    """The agent's own LAN gossip member, as ``/v1/agent/self`` and ``/members`` show it."""
    return {
        "Name": node,
        "Addr": "127.0.0.1",
        "Port": SERF_LAN_PORT,
        "Tags": tags,
        "Status": 1,  # alive
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 4,
    }


class AgentEndpoint:
    """Handlers for ``/v1/agent/...``."""

    def __init__(self, api: ApiContext, http_port: int, client_addr: str) -> None:
        self.api = api
        self.http_port = http_port
        self.client_addr = client_addr

    # ----- reads ------------------------------------------------------------------------

    def self_info(self, request: Request) -> Response:
        """``GET /v1/agent/self``: every top-level value is an object (Go client rule)."""
        state = self.api.state
        node = state.node_name
        version = CONSUL_VERSION
        tags = server_serf_tags(state.datacenter, state.node_id)
        body = {
            "Config": {
                "Datacenter": state.datacenter,
                "PrimaryDatacenter": state.datacenter,
                "NodeName": node,
                "NodeID": state.node_id,
                "Revision": "embedded",
                "Server": True,
                "Version": version,
                "BuildDate": BUILD_DATE,
            },
            "DebugConfig": {
                "Datacenter": state.datacenter,
                "PrimaryDatacenter": state.datacenter,
                "NodeName": node,
                "NodeID": state.node_id,
                "DevMode": True,
                "ServerMode": True,
                "ClientAddrs": [self.client_addr],
                "HTTPPort": self.http_port,
                "ServerPort": SERVER_PORT,
                "SessionTTLMin": format_duration(state.session_ttl_min_ns),
                "KVMaxValueSize": 524288,
                "CheckUpdateInterval": "5m0s",
                "GossipLANGossipInterval": DEV_GOSSIP_INTERVAL,
                "GossipLANGossipNodes": GOSSIP_NODES,
                "GossipLANProbeInterval": format_duration(state.gossip.probe_interval_ns),
                "GossipLANProbeTimeout": format_duration(state.gossip.probe_timeout_ns),
                "GossipLANRetransmitMult": RETRANSMIT_MULT,
                "GossipLANSuspicionMult": state.gossip.suspicion_mult,
                "ACLsEnabled": False,
                "EnableRemoteScriptChecks": state.local.enable_script_checks,
                "EnableLocalScriptChecks": state.local.enable_script_checks,
                "DataDir": "",
                "Embedded": True,
            },
            "Coord": {"Vec": [0.0] * 8, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05},
            "Member": serf_member(node, tags),
            "Stats": {
                "agent": {
                    "check_monitors": str(
                        sum(1 for c in state.local.checks().values() if c.type == "script")
                    ),
                    "check_ttls": str(
                        sum(1 for c in state.local.checks().values() if c.type == "ttl")
                    ),
                    "checks": str(len(state.local.checks())),
                    "services": str(len(state.local.services())),
                },
                "build": {
                    "prerelease": "",
                    "revision": "embedded",
                    "version": version,
                    "version_metadata": "",
                },
                "consul": {
                    "acl": "disabled",
                    "bootstrap": "false",
                    "known_datacenters": "1",
                    "leader": "true",
                    "leader_addr": LEADER_ADDR,
                    "server": "true",
                },
                "raft": {"applied_index": str(state.store.index), "state": "Leader"},
                "runtime": {"arch": "amd64", "os": "linux", "version": "python"},
                "serf_lan": {"members": "1"},
                "serf_wan": {"members": "1"},
            },
            "Meta": {"consul-network-segment": "", "consul-version": version},
            "xDS": {
                "SupportedProxies": {"envoy": []},
                "Port": 8502,
                "Ports": {"Plaintext": 8502, "TLS": -1},
            },
        }
        return self.api.json(request, body)

    def services(self, request: Request) -> Response:
        """``GET /v1/agent/services``: local services keyed by ID (not ``consul``), ``?filter``
        on ``api.AgentService``."""
        found = optional_filter(request.get("filter"), AGENT_SERVICE)
        dc = self.api.state.datacenter
        body = {
            sid: render.agent_service(s, dc) for sid, s in self.api.state.local.services().items()
        }
        return self.api.json(request, found.values(body) if found else body)

    def service(self, request: Request) -> Response | Deferred:
        """``GET /v1/agent/service/<id>`` (``AgentService``): one local service with its
        ``ContentHash`` (also in ``X-Consul-ContentHash``); with ``?hash=`` equal to the
        current hash it blocks until the service changes or ``?wait`` runs out."""
        service_id = request.path[len("/v1/agent/service/") :]
        options = self.api.parse(request)
        state = self.api.state
        dc = state.datacenter

        def run() -> QueryResult[dict[str, Any] | None]:
            found = state.local.services().get(service_id)
            body = None if found is None else render.agent_service(found, dc)
            if body is not None:
                body = render.with_content_hash(body)
            return QueryResult(state.store.table_index(SERVICES), body, (Topic(SERVICES),))

        def finish(result: QueryResult[dict[str, Any] | None]) -> Response:
            if result.value is None:
                text = f"unknown service ID: {service_id}"
                return Response(404, text.encode(), {"Content-Type": PLAIN})
            content_hash = result.value["ContentHash"]
            return self.api.json(
                request, result.value, headers={"X-Consul-ContentHash": content_hash}
            )

        with state.store.lock:
            first = run()
        wanted = request.get("hash")
        if not wanted or first.value is None or first.value["ContentHash"] != wanted:
            return finish(first)
        return Deferred(
            run=run,  # type: ignore[arg-type]
            render=finish,  # type: ignore[arg-type]
            min_index=first.index,
            timeout_s=state.query_timeout_s(options.wait_ns),
            cache_key=(request.raw_path, request.raw_query),
        )

    def checks(self, request: Request) -> Response:
        """``GET /v1/agent/checks``: local checks keyed by ID (not ``serfHealth``), ``?filter``
        on ``structs.HealthCheck`` with selectors checked only once there is a check."""
        found = optional_filter(request.get("filter"), HEALTH_CHECK, lazy=True)
        body = {cid: render.health_check(c) for cid, c in self.api.state.local.checks().items()}
        return self.api.json(request, found.values(body) if found else body)

    def members(self, request: Request) -> Response:
        """``GET /v1/agent/members``: the single LAN member."""
        state = self.api.state
        members = [
            serf_member(
                state.node_name,
                {"dc": state.datacenter, "role": "consul", "port": str(SERVER_PORT)},
            )
        ]
        return self.api.json(request, filter_members(request.get("filter"), members))

    # ----- services ---------------------------------------------------------------------

    def register_service(self, request: Request) -> Response:
        """``PUT /v1/agent/service/register``."""
        fields = decode_body(request, SERVICE_DEFINITION)
        state = self.api.state
        service, checks = build_service(fields, state.node_name)
        state.local.add_service(
            service,
            checks,
            replace_existing_checks=bool(request.query.get("replace-existing-checks")),
        )
        return Response(200)

    def deregister_service(self, request: Request) -> Response:
        """``PUT /v1/agent/service/deregister/<id>``."""
        service_id = request.path[len("/v1/agent/service/deregister/") :]
        self.api.state.local.remove_service(service_id)
        return Response(200)

    # ----- maintenance ------------------------------------------------------------------

    @staticmethod
    def _enable_flag(request: Request) -> bool:
        """``?enable``: required, and parsed as Go's ``strconv.ParseBool``."""
        if not request.has("enable"):
            raise InvalidInput("Missing value for enable")
        raw = request.get("enable")
        if raw in GO_TRUE:
            return True
        if raw in GO_FALSE:
            return False
        raise InvalidInput(f"Invalid value for enable: {go_quote(raw)}")

    def node_maintenance(self, request: Request) -> Response:
        """``PUT /v1/agent/maintenance?enable=&reason=`` (``AgentNodeMaintenance``)."""
        state = self.api.state
        if self._enable_flag(request):
            maintenance.enable_node(state.local, state.node_name, request.get("reason"))
        else:
            maintenance.disable_node(state.local)
        return Response(200)

    def service_maintenance(self, request: Request) -> Response:
        """``PUT /v1/agent/service/maintenance/<id>?enable=&reason=``."""
        service_id = request.path[len("/v1/agent/service/maintenance/") :]
        if not service_id:
            raise InvalidInput("Missing service ID")
        enable = self._enable_flag(request)
        state = self.api.state
        if enable:
            maintenance.enable_service(
                state.local, state.node_name, service_id, request.get("reason")
            )
        else:
            maintenance.disable_service(state.local, service_id)
        return Response(200)

    # ----- checks -----------------------------------------------------------------------

    def register_check(self, request: Request) -> Response:
        """``PUT /v1/agent/check/register``."""
        fields = decode_body(request, CHECK_DEFINITION)
        check, spec = build_check(fields, self.api.state.node_name)
        self.api.state.local.add_check(check, spec)
        return Response(200)

    def deregister_check(self, request: Request) -> Response:
        """``PUT /v1/agent/check/deregister/<id>``."""
        check_id = request.path[len("/v1/agent/check/deregister/") :]
        self.api.state.local.remove_check(check_id)
        return Response(200)

    def _ttl_update(self, request: Request, prefix: str, status: str, output: str) -> Response:
        check_id = request.path[len(prefix) :]
        self.api.state.local.update_ttl(check_id, status, output)
        return Response(200)

    def check_pass(self, request: Request) -> Response:
        """``PUT /v1/agent/check/pass/<id>?note=``."""
        return self._ttl_update(request, "/v1/agent/check/pass/", PASSING, request.get("note"))

    def check_warn(self, request: Request) -> Response:
        """``PUT /v1/agent/check/warn/<id>?note=``."""
        return self._ttl_update(request, "/v1/agent/check/warn/", WARNING, request.get("note"))

    def check_fail(self, request: Request) -> Response:
        """``PUT /v1/agent/check/fail/<id>?note=``."""
        return self._ttl_update(request, "/v1/agent/check/fail/", CRITICAL, request.get("note"))

    def check_update(self, request: Request) -> Response:
        """``PUT /v1/agent/check/update/<id>`` with ``{"Status", "Output"}``."""
        fields = decode_body(request, CHECK_UPDATE)
        status = fields.get("Status", "")
        if status not in STATUSES:
            raise InvalidInput(f"Invalid check status: '{status}'")
        return self._ttl_update(
            request, "/v1/agent/check/update/", status, fields.get("Output", "")
        )
