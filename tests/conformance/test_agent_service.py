"""GET /v1/agent/service/<id> (agent/agent_endpoint.go :: AgentService).

The api.AgentService JSON with a ContentHash (also sent as X-Consul-ContentHash); ``?hash=``
equal to the current hash blocks until the service changes or ``?wait`` runs out; an unknown
ID is 404 ``unknown service ID: <id>``.  Values of the hash are the agent's own; only that it
changes with the service is compared.
"""

from __future__ import annotations

import threading
import time

from .conftest import Registrations
from .support import Api


def test_unknown_service_is_404(api: Api, uid: str) -> None:
    response = api.get("/v1/agent/service/" + uid)
    assert (response.status_code, response.text) == (404, f"unknown service ID: {uid}")


def test_service_with_content_hash(api: Api, uid: str, registrations: Registrations) -> None:
    assert registrations.service({"Name": uid, "ID": uid + "-1", "Port": 8080}).status_code == 200
    response = api.get(f"/v1/agent/service/{uid}-1")
    assert response.status_code == 200
    body = response.json()
    assert (body["ID"], body["Service"], body["Port"]) == (uid + "-1", uid, 8080)
    assert body["ContentHash"] == response.headers["X-Consul-ContentHash"] != ""
    assert body["Meta"] == {} and body["Tags"] == []
    assert "X-Consul-Index" not in response.headers
    body = {"Name": uid, "ID": uid + "-1", "Port": 8081}
    assert registrations.service(body).status_code == 200
    again = api.get(f"/v1/agent/service/{uid}-1").json()
    assert again["ContentHash"] != response.json()["ContentHash"]


def test_hash_blocks_until_the_service_changes(
    api: Api, uid: str, registrations: Registrations
) -> None:
    assert registrations.service({"Name": uid, "Port": 1}).status_code == 200
    first = api.get("/v1/agent/service/" + uid).json()["ContentHash"]
    started = time.monotonic()
    same = api.get(f"/v1/agent/service/{uid}?hash={first}&wait=300ms")
    assert time.monotonic() - started >= 0.25
    assert same.json()["ContentHash"] == first
    change = threading.Timer(0.3, lambda: registrations.service({"Name": uid, "Port": 2}))
    change.start()
    try:
        woke = api.get(f"/v1/agent/service/{uid}?hash={first}&wait=10s")
    finally:
        change.join()
    assert woke.json()["Port"] == 2
    assert woke.json()["ContentHash"] != first
