"""What a fresh ``consul agent -dev`` writes to raft before its first request is answered.

:func:`bootstrap` replays that start-up on the dev agent's store, entry by entry, so every
index a client sees afterwards (``X-Consul-Index``, ``CreateIndex``, ``ModifyIndex``) has the
shape of a real dev agent's: the raft log already holds the leader's own entries, the node and
its ``consul`` service were registered by the leader's reconcile, and the agent's anti-entropy
then added the node's tagged addresses and meta (which moves the node's entries once more).

Promised: the order of the catalog writes and which index entries they move (Consul's
``leaderLoop`` → ``establishLeadership`` → ``reconcile`` → ``handleAliveMember``, then the
agent's ``syncNodeInfo``).  Only believed, from reading the Go source: the exact number of
entries the leader spends on its other tables before the reconcile (autopilot, federation
state, Connect CA, system metadata), which run partly in goroutines.  Nothing the dev agent
serves reads those tables; they only move the global index.  Sources are in ``FIDELITY.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .catalog import (
    CONSUL_SERVICE,
    PASSING,
    SERF_ALIVE_OUTPUT,
    SERF_CHECK_ID,
    SERF_CHECK_NAME,
    Catalog,
    HealthCheck,
    Node,
    Service,
)
from .store import Store

LOOPBACK = "127.0.0.1"
SERVER_PORT = 8300
GRPC_PORT = 8502

# Raft log entries the leader writes before its reconcile, in order: (what, index entry it
# moves or None for an entry the state store does not keep).
LEADER_ENTRIES: tuple[tuple[str, str | None], ...] = (
    ("raft bootstrap configuration (BootstrapCluster)", None),
    ("leader no-op (raft runLeader)", None),
    ("leaderLoop barrier", None),
    ("autopilot configuration (getOrCreateAutopilotConfig)", "autopilot-config"),
    ("federation state of the primary datacenter (anti-entropy)", "federation-states"),
    ("Connect CA configuration (initializeCAConfig)", "connect-ca-config"),
    ("built-in CA provider state (Configure)", "connect-ca-builtin"),
    ("built-in CA provider state (GenerateRoot)", "connect-ca-builtin"),
    ("Connect CA roots (initializeRootCA)", "connect-ca-roots"),
    ("system metadata: intention format (legacyIntentionMigration)", "system-metadata"),
    ("system metadata: virtual IPs (setVirtualIPFlags)", "system-metadata"),
    ("system metadata: terminating-gateway virtual IPs (setVirtualIPFlags)", "system-metadata"),
)


@dataclass
class AgentIdentity:
    """Who the dev agent is: what its serf member advertises and its anti-entropy syncs."""

    node_id: str
    node_name: str
    datacenter: str
    version: str
    node_meta: dict[str, str] = field(default_factory=dict)

    def consul_service(self) -> Service:
        """The ``consul`` service ``handleAliveMember`` registers for a server member."""
        return Service(
            id=CONSUL_SERVICE,
            service=CONSUL_SERVICE,
            port=SERVER_PORT,
            meta={
                "grpc_port": str(GRPC_PORT),
                "non_voter": "false",
                "raft_version": "3",
                "read_replica": "false",
                "serf_protocol_current": "2",
                "serf_protocol_max": "5",
                "serf_protocol_min": "1",
                "version": self.version,
            },
        )

    def member_node(self) -> Node:
        """The node as the leader first registers it from the serf member: no tagged
        addresses and no meta yet (``handleAliveMember`` copies them only from an existing
        catalog node)."""
        return Node(
            id=self.node_id,
            name=self.node_name,
            address=LOOPBACK,
            datacenter=self.datacenter,
        )

    def synced_node(self) -> Node:
        """The node as the agent's anti-entropy writes it (``syncNodeInfo``)."""
        return Node(
            id=self.node_id,
            name=self.node_name,
            address=LOOPBACK,
            datacenter=self.datacenter,
            tagged_addresses={
                "lan": LOOPBACK,
                "lan_ipv4": LOOPBACK,
                "wan": LOOPBACK,
                "wan_ipv4": LOOPBACK,
            },
            meta={
                **self.node_meta,
                "consul-network-segment": "",
                "consul-version": self.version,
            },
        )


def bootstrap(store: Store, catalog: Catalog, agent: AgentIdentity) -> None:
    """Write a fresh dev agent's start-up entries, one store transaction per raft entry."""
    for _what, entry in LEADER_ENTRIES:
        with store.write() as txn:
            txn.log_entry()
            if entry is not None:
                txn.bump(entry)
    with store.write() as txn:
        catalog.register_node(txn, agent.member_node())
        catalog.ensure_service(txn, agent.node_name, agent.consul_service())
        catalog.ensure_check(
            txn,
            HealthCheck(
                node=agent.node_name,
                check_id=SERF_CHECK_ID,
                name=SERF_CHECK_NAME,
                status=PASSING,
                output=SERF_ALIVE_OUTPUT,
            ),
        )
    with store.write() as txn:
        catalog.register_node(txn, agent.synced_node())
