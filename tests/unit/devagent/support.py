"""Helpers for the dev agent's state-machine tests."""

from __future__ import annotations

from elect_helpers.devagent.sessions import Session
from elect_helpers.devagent.state import DevState

SECOND = 1_000_000_000


def new_session(state: DevState, **fields: object) -> str:
    """Create a session on ``state`` with Consul's HTTP defaults overridden by ``fields``."""
    session = Session(id="", node=state.node_name, node_checks=["serfHealth"])
    for name, value in fields.items():
        setattr(session, name, value)
    return state.session_create(session)
