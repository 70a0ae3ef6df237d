"""Hypothesis strategies for malformed requests, and the answers real Consul allows.

The allowed status codes per endpoint come from ``consul-facts.md`` sections 1-7:
405 for a method the endpoint does not take (200 for OPTIONS), 404 for an unknown
``/v1/`` path, 400 for anything Go's HTTP server or ``parse`` rejects (bad paths,
``index``/``wait``, decode errors), and per endpoint the codes its handler returns.
A 500 is legitimate only where Consul returns one; for KV and session endpoints the
facts list every 500 text, so an unknown 500 body there means a handler crashed.

Every generated request stays on loopback: any check URL or address a body carries is
rewritten to 127.0.0.1 before it is sent, so the agent never probes another host.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass

from hypothesis import strategies as st

from .rawhttp import RawRequest


@dataclass(frozen=True)
class Endpoint:
    pattern: str  # a trailing "/" means a prefix pattern, as in Consul's router
    methods: frozenset[str]
    statuses: frozenset[int]
    body: str | None = None  # name of the JSON body kind this endpoint decodes


def _ep(pattern: str, methods: str, statuses: set[int], body: str | None = None) -> Endpoint:
    return Endpoint(pattern, frozenset(methods.split()), frozenset(statuses), body)


ENDPOINTS = [
    _ep("/v1/kv/", "GET PUT DELETE", {200, 400, 404, 413, 500}),
    _ep("/v1/session/create", "PUT", {200, 400, 500}, "session"),
    _ep("/v1/session/destroy/", "PUT", {200, 400, 500}),
    _ep("/v1/session/renew/", "PUT", {200, 400, 404, 500}),
    _ep("/v1/session/info/", "GET", {200, 400, 500}),
    _ep("/v1/session/node/", "GET", {200, 400, 500}),
    _ep("/v1/session/list", "GET", {200, 400, 500}),
    _ep("/v1/agent/self", "GET", {200, 400, 500}),
    _ep("/v1/agent/members", "GET", {200, 400, 500}),
    _ep("/v1/agent/services", "GET", {200, 400, 500}),
    _ep("/v1/agent/service/", "GET", {200, 400, 404, 500}),
    _ep("/v1/agent/checks", "GET", {200, 400, 500}),
    _ep("/v1/agent/service/register", "PUT", {200, 400, 500}, "service"),
    _ep("/v1/agent/service/deregister/", "PUT", {200, 400, 404, 500}),
    _ep("/v1/agent/maintenance", "PUT", {200, 400, 500}),
    _ep("/v1/agent/service/maintenance/", "PUT", {200, 400, 404, 500}),
    _ep("/v1/agent/force-leave/", "PUT", {200, 400, 404, 500}),
    _ep("/v1/agent/check/register", "PUT", {200, 400, 404, 500}, "check"),
    _ep("/v1/agent/check/deregister/", "PUT", {200, 400, 404, 500}),
    _ep("/v1/agent/check/pass/", "PUT", {200, 400, 404, 500}),
    _ep("/v1/agent/check/warn/", "PUT", {200, 400, 404, 500}),
    _ep("/v1/agent/check/fail/", "PUT", {200, 400, 404, 500}),
    _ep("/v1/agent/check/update/", "PUT", {200, 400, 404, 500}, "update"),
    _ep("/v1/health/service/", "GET", {200, 400, 500}),
    _ep("/v1/health/checks/", "GET", {200, 400, 500}),
    _ep("/v1/health/node/", "GET", {200, 400, 500}),
    _ep("/v1/health/state/", "GET", {200, 400, 500}),
    _ep("/v1/catalog/register", "PUT", {200, 400, 500}),
    _ep("/v1/catalog/deregister", "PUT", {200, 400, 500}),
    _ep("/v1/catalog/datacenters", "GET", {200, 400, 500}),
    _ep("/v1/catalog/services", "GET", {200, 400, 500}),
    _ep("/v1/catalog/service/", "GET", {200, 400, 500}),
    _ep("/v1/catalog/nodes", "GET", {200, 400, 500}),
    _ep("/v1/catalog/node/", "GET", {200, 400, 500}),
    _ep("/v1/status/leader", "GET", {200, 400, 500}),
    _ep("/v1/status/peers", "GET", {200, 400, 500}),
]

#: The endpoints that decode bodies or change state are drawn three times as often.
WEIGHTED_ENDPOINTS = [
    e
    for e in ENDPOINTS
    for _ in range(3 if e.body or e.pattern.startswith(("/v1/kv/", "/v1/session/")) else 1)
]

#: Every 500 text Consul gives on KV and session endpoints (facts 1.4, 2.3, 2.4, 3.2),
#: plus Go's error for a body shorter than its Content-Length.
KNOWN_500 = {
    "/v1/kv/": re.compile(
        r"^(strconv\.ParseUint: |raft apply failed: |No path to datacenter|unexpected EOF)"
    ),
    "/v1/session/": re.compile(
        r"^(Invalid Behavior setting|Session TTL '|Invalid Session TTL|Must provide Node"
        r"|apply failed: |No path to datacenter|unexpected EOF)"
    ),
}

METHODS = ["GET", "PUT", "DELETE", "POST", "HEAD", "OPTIONS", "PATCH", "get", "BREW"]
QUERY_KEYS = [
    "index", "wait", "recurse", "keys", "separator", "seperator", "raw", "cas", "flags",
    "acquire", "release", "dc", "datacenter", "stale", "consistent", "max_stale", "passing",
    "note", "replace-existing-checks", "pretty", "filter", "tag", "token", "cached",
]  # fmt: skip
LOOPBACK_CHECK_FIELDS = {
    "http": "http://127.0.0.1:9/_health",
    "tcp": "127.0.0.1:9",
    "grpc": "127.0.0.1:9",
    "h2ping": "127.0.0.1:9",
    "udp": "127.0.0.1:9",
}
#: Fields whose string value could make a real agent talk to another host or run code.
RAW_PATH_TAILS = [b"%ff", b"%", b"%zz", b"%00", b"%0a", b"%c3%28"]
UNSAFE_FIELDS = {"docker_container_id", "dockercontainerid", "args", "script", "shell"}


def route(path: str) -> Endpoint | None:
    """The endpoint Consul's router would pick for a decoded path, if any."""
    best = None
    for endpoint in ENDPOINTS:
        prefix = endpoint.pattern.endswith("/")
        hit = path == endpoint.pattern or (prefix and path.startswith(endpoint.pattern))
        if hit and (best is None or len(endpoint.pattern) > len(best.pattern)):
            best = endpoint
    return best


def _unclean(path: str) -> bool:
    """Go's ServeMux answers 301 (to the cleaned path) for these."""
    return "//" in path or "/./" in path or "/../" in path or path.endswith(("/.", "/.."))


def allowed(method: str, target: bytes) -> tuple[frozenset[int], Endpoint | None]:
    """The status codes real Consul could answer ``method target`` with."""
    raw_path = target.split(b"?", 1)[0].decode("latin-1")
    path = urllib.parse.unquote(raw_path, errors="replace")
    codes = {400}  # Go's server and cleanhttp reject malformed targets before routing
    if _unclean(path) or path in (e.pattern.rstrip("/") for e in ENDPOINTS):
        codes.add(301)
    endpoint = route(path)
    if endpoint is None:
        codes |= {404} if path.startswith("/v1/") else {200, 301, 404, 405}
    elif method == "OPTIONS":
        codes.add(200)
    elif method not in endpoint.methods:
        codes.add(405)
    else:
        codes |= endpoint.statuses
    return frozenset(codes), endpoint


def known_500(endpoint: Endpoint | None, body: bytes) -> bool:
    """False when a 500 body on a KV/session endpoint is no error Consul gives there."""
    if endpoint is None:
        return True
    for prefix, pattern in KNOWN_500.items():
        if endpoint.pattern.startswith(prefix):
            return bool(pattern.search(body.decode("utf-8", "replace")))
    return True


# -- safety of bodies ---------------------------------------------------------------------


def loopback_only(value: object) -> object:
    """Rewrite check targets in any JSON value to loopback ones; drop script/docker."""
    if isinstance(value, list):
        return [loopback_only(item) for item in value]
    if not isinstance(value, dict):
        return value
    cleaned = {}
    for key, item in value.items():
        lowered = key.lower() if isinstance(key, str) else key
        if lowered in UNSAFE_FIELDS:
            continue
        if lowered in LOOPBACK_CHECK_FIELDS and isinstance(item, str):
            item = LOOPBACK_CHECK_FIELDS[lowered]
        cleaned[key] = loopback_only(item)
    return cleaned


# -- strategies ---------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["", "0", "10s", "-1s", "1h", "25h", "9999999h", "abc", "release", "1e3"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=10), inner, max_size=4),
    ),
    max_leaves=10,
)

#: A valid body of each kind; the fuzzer replaces fields with values of any JSON type.
BASE_BODIES: dict[str, dict] = {
    "session": {
        "Name": "fuzz",
        "Node": "",
        "LockDelay": "1s",
        "Behavior": "release",
        "TTL": "30s",
        "Checks": [],
        "NodeChecks": [],
        "ServiceChecks": [],
    },
    "service": {
        "ID": "fuzz-svc",
        "Name": "fuzz-svc",
        "Tags": ["a"],
        "Address": "127.0.0.1",
        "TaggedAddresses": {},
        "Meta": {"k": "v"},
        "Port": 9,
        "Kind": "",
        "Check": {"TTL": "30s"},
        "Checks": [],
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": False,
    },
    "check": {
        "ID": "fuzz-check",
        "Name": "fuzz-check",
        "Notes": "",
        "ServiceID": "",
        "Status": "passing",
        "TTL": "30s",
        "Interval": "",
        "Timeout": "",
        "HTTP": "",
        "Header": {},
        "Method": "",
        "Body": "",
        "TCP": "",
        "DeregisterCriticalServiceAfter": "",
    },
    "update": {"Status": "passing", "Output": "ok"},
}


RAW_MARK = "\x00raw-number\x00"
#: Out-of-range, non-finite and odd number literals (Go's decoder rejects most of them).
RAW_NUMBERS = [
    "1e400", "-1e400", "1e300", "1e30", "-1e30", "NaN", "Infinity", "-Infinity", "-0",
    "18446744073709551616", "9223372036854775808", "-9223372036854775809", "1.5", "0.0000001",
]  # fmt: skip


def _case_variant(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from([name, name.lower(), name.upper()])


@st.composite
def typed_bodies(draw: st.DrawFn, kind: str) -> bytes:
    """A body of ``kind`` with 1-3 fields given values of any JSON type, field names in
    any case, sometimes an unknown field; check targets stay on loopback."""
    base = dict(BASE_BODIES[kind])
    if kind == "session":
        base["Node"] = draw(st.sampled_from(["", "unknown-node"]))
        if base["Node"] == "":
            del base["Node"]
    for name in draw(st.lists(st.sampled_from(sorted(base)), min_size=1, max_size=3)):
        base[name] = draw(json_values)
    if kind == "service" and draw(st.booleans()):
        base["Check"] = draw(check_objects())
    raw = None
    if draw(st.booleans()):  # a number literal json.dumps would never write
        raw = draw(st.sampled_from(RAW_NUMBERS))
        base[draw(st.sampled_from(sorted(base)))] = RAW_MARK
    body = {draw(_case_variant(k)): v for k, v in base.items()}
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    text = json.dumps(loopback_only(body))
    if raw is not None:
        text = text.replace(json.dumps(RAW_MARK), raw)
    return text.encode()


@st.composite
def check_objects(draw: st.DrawFn) -> dict:
    """A check definition mixing valid and invalid types (HTTP/TCP only on loopback)."""
    fields = {
        "TTL": st.sampled_from(["10s", "0s", "x", "", 5, None]),
        "Interval": st.sampled_from(["1s", "10ms", "", "bad", 1000, -1]),
        "Timeout": st.sampled_from(["1s", "", "bad", 3]),
        "HTTP": st.sampled_from(["http://127.0.0.1:9/_health", "", 7]),
        "TCP": st.sampled_from(["127.0.0.1:9", "", []]),
        "Status": st.sampled_from(["passing", "warning", "critical", "unknown", "", 1]),
        "Name": st.one_of(st.text(max_size=8), st.integers()),
        "DeregisterCriticalServiceAfter": st.sampled_from(["1m", "", "x", 5]),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), max_size=4, unique=True))
    return {name: draw(fields[name]) for name in chosen}


body_kinds = st.sampled_from(sorted(BASE_BODIES))

raw_bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(loopback_only(v)).encode()),
    st.sampled_from(
        [b"{", b"[1,", b'{"Name": "\xff\xfe"}', b'{"Name": NaN}', b"\xff" * 8, b"null", b"true"]
    ),
)


printable_segments = st.text(
    alphabet=st.characters(categories=["L", "N", "P", "S"], exclude_characters="?#%"),
    max_size=12,
)
odd_segments = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="?#"), max_size=8)


@st.composite
def paths(draw: st.DrawFn) -> str:
    """Known endpoints with random tails, plus unknown /v1/ paths and odd non-/v1 paths.

    Unknown paths use an ``x-`` segment so they never name a real Consul endpoint the
    embedded agent leaves out (which would answer 200 on real Consul).
    """
    endpoint = draw(st.sampled_from(WEIGHTED_ENDPOINTS))
    segment = draw(st.one_of(printable_segments, printable_segments, odd_segments))
    choice = draw(st.integers(0, 9))
    if choice <= 7:
        tail = segment if endpoint.pattern.endswith("/") else ""
        if endpoint.pattern == "/v1/agent/check/update/" and draw(st.booleans()):
            tail = "fuzz-ttl"
        return endpoint.pattern + tail
    if choice == 8:
        return "/v1/x-" + segment
    return draw(st.sampled_from(["/", "/ui/", "/x-other", "/v1", "/v1/"]))


def _quote_path(path: str, raw_bytes: bytes) -> bytes:
    quoted = urllib.parse.quote(path, safe="/:@!$&'()*+,;=-._~").encode()
    return quoted + raw_bytes


@st.composite
def query_strings(draw: st.DrawFn) -> bytes:
    """Random known and unknown parameters with random values, sometimes raw bytes."""
    pairs = draw(
        st.lists(
            st.tuples(
                st.one_of(st.sampled_from(QUERY_KEYS), st.text(max_size=6)),
                st.one_of(
                    st.sampled_from(["", "0", "1", "5", "-1", "abc", "10s", "1ms", "true", "x y"]),
                    st.integers(0, 2**65).map(str),
                    st.text(max_size=10),
                ),
                st.booleans(),  # "key" alone, without "=value"
            ),
            max_size=5,
        )
    )
    parts = []
    for key, value, bare in pairs:
        text = urllib.parse.quote(key, safe="")
        parts.append(text if bare else text + "=" + urllib.parse.quote(value, safe=""))
    query = "&".join(parts).encode()
    if draw(st.integers(0, 7)) == 0:
        query += draw(st.sampled_from([b"&%zz=1", b"&a=%ff%fe", b"&&=&", b"&index"]))
    return _bounded_blocking(query)


def _bounded_blocking(query: bytes) -> bytes:
    """Make sure a request that would block does so for at most 50 ms.

    Consul blocks when the first ``index`` parses as an unsigned integer above 0; a
    leading ``wait=50ms`` then wins over any later ``wait`` (Go reads the first value).
    """
    text = query.decode("latin-1")
    for key, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        if key == "index":
            if re.fullmatch(r"[0-9]+", value) and 0 < int(value) < 2**64:
                return b"wait=50ms&" + query
            break
    return query


@st.composite
def malformed_requests(draw: st.DrawFn) -> RawRequest:
    """One request of any shape: method, path, query, body, framing."""
    path = draw(paths())
    endpoint = route(path)
    if endpoint is not None and draw(st.integers(0, 3)):
        method = draw(st.sampled_from(sorted(endpoint.methods)))  # get past the router
    else:
        method = draw(st.sampled_from(METHODS))
    raw_tail = b"" if draw(st.integers(0, 5)) else draw(st.sampled_from(RAW_PATH_TAILS))
    target = _quote_path(path, raw_tail)
    query = draw(query_strings()) if draw(st.booleans()) else b""
    if query:
        target += b"?" + query
    if endpoint and endpoint.body and draw(st.integers(0, 3)):
        body = draw(typed_bodies(endpoint.body))
    elif draw(st.integers(0, 29)) == 0:
        body = b"x" * (512 * 1024 + draw(st.integers(1, 1000)))  # over kv_max_value_size
    else:
        body = draw(raw_bodies)
    framing = draw(st.sampled_from(["exact"] * 6 + ["short", "huge", "none", "chunked"]))
    declared = {
        "exact": None,
        "short": len(body) + draw(st.integers(1, 100)),  # truncated body
        "huge": 10**12,  # a length nobody sends
        "none": -1,
        "chunked": None,
    }[framing]
    return RawRequest(
        method=method.encode(),
        target=target,
        body=body,
        declared_length=declared,
        chunked=framing == "chunked",
    )
