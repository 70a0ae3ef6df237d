"""Session IDs compared as UUIDs, user input quoted as Go's %q, and the order of checks.

Found while reviewing the embedded agent against Consul's Go source (not in the numbered
facts): each test names the function it follows.
"""

from __future__ import annotations

from .conftest import Sessions
from .support import Api, index_of


def test_lock_taken_with_an_upper_case_session_id_is_freed_with_the_session(
    api: Api, prefix: str, sessions: Sessions
) -> None:
    """The kvs table's ``session`` index is a UUID index [agent/consul/state/kvs.go ::
    kvsTableSchema (UUIDFieldIndex)], so a lock acquired with the ID in upper case is found
    and released when the session is destroyed [agent/consul/state/session.go ::
    deleteSessionTxn]."""
    session_id = sessions.create({"LockDelay": "0s"})
    assert api.kv_put(f"{prefix}l", b"v", f"?acquire={session_id.upper()}") is True
    assert api.put("/v1/session/destroy/" + session_id).json() is True
    entry = api.kv_entry(f"{prefix}l")
    assert entry is not None
    assert "Session" not in entry


def test_invalid_session_text_quotes_like_go(api: Api, prefix: str) -> None:
    """``invalid session %#v`` escapes a quote in the ID [agent/consul/state/kvs.go ::
    kvsLockTxn]."""
    response = api.put(f"/v1/kv/{prefix}l?acquire=a%22b", b"v")
    assert response.status_code == 500
    assert response.text.strip() == 'raft apply failed: invalid session "a\\"b"'


def test_missing_key_name_comes_before_the_datacenter(api: Api) -> None:
    """KVSGet refuses an empty key before it parses ?dc [agent/kvs_endpoint.go :: KVSGet]."""
    response = api.get("/v1/kv/?dc=dc9")
    assert response.status_code == 400
    assert response.text.strip() == "Missing key name"


def test_health_state_of_an_unknown_state_is_empty(api: Api) -> None:
    """Only an empty state is refused [agent/health_endpoint.go :: HealthChecksInState]; the
    state store looks any other value up in the ``status`` index and finds nothing
    [agent/consul/state/catalog.go :: checksInStateTxn]."""
    response = api.get("/v1/health/state/bogus")
    assert response.status_code == 200
    assert response.json() == []
    assert index_of(response) >= 1
