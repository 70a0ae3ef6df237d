"""``/v1/kv/``: GET (single, recurse, keys, raw), PUT (flags/cas/acquire/release), DELETE.

Follows ``agent/kvs_endpoint.go`` step by step: ``s.parse`` runs before the method switch,
``Missing key name`` / ``Conflicting flags`` are written directly, ``flags`` and ``cas`` parse
errors are Go's strconv texts with status 500, the 413 check looks at ``Content-Length`` only.
"""

from __future__ import annotations

import urllib.parse

from . import render
from .api_common import ApiContext, QueryOptions, parse_uint
from .errors import TooLarge
from .httpcore import Deferred, IncompleteBody, PlainError, Request, Response
from .kv import DirEntry
from .store import QueryResult

KV_PREFIX = "/v1/kv/"
KV_MAX_VALUE_SIZE = 512 * 1024
KV_SIZE_DOC = "https://www.consul.io/docs/agent/config/config-files#kv_max_value_size"


def _missing_key(key: str) -> None:
    if key == "":
        raise PlainError(400, "Missing key name")


def _conflicting(request: Request, *flags: str) -> None:
    if sum(1 for f in flags if request.has(f)) > 1:
        encoded = urllib.parse.urlencode(
            [(k, v) for k in sorted(request.query) for v in request.query[k]]
        )
        raise PlainError(400, f"Conflicting flags: {encoded}\n")


class KVEndpoint:
    """Handlers for ``/v1/kv/``."""

    def __init__(self, api: ApiContext) -> None:
        self.api = api

    def handle(self, request: Request) -> Response | Deferred:
        """``KVSEndpoint``: parse the common options, then dispatch on the method."""
        options = self.api.parse(request)
        key = request.path[len(KV_PREFIX) :]
        if request.method == "GET":
            if request.has("keys"):
                return self._keys(request, key, options)
            return self._get(request, key, options)
        if request.method == "PUT":
            return self._put(request, key, options.datacenter)
        return self._delete(request, key, options.datacenter)

    def _get(self, request: Request, key: str, options: QueryOptions) -> Response | Deferred:
        kv = self.api.state.kv
        raw = request.has("raw")
        if request.has("recurse"):
            self.api.require_local_dc(options.datacenter)
            return self.api.respond(
                request,
                options,
                lambda: kv.list(key),
                lambda r: self._entries(request, r.index, r.value, False),
            )
        _missing_key(key)  # written by KVSGet itself, before the RPC can miss the datacenter
        self.api.require_local_dc(options.datacenter)
        return self.api.respond(
            request,
            options,
            lambda: kv.get(key),
            lambda r: self._entries(request, r.index, [r.value] if r.value else [], raw),
        )

    def _entries(
        self, request: Request, index: int, entries: list[DirEntry], raw: bool
    ) -> Response:
        meta = self.api.meta(index)
        if not entries:
            return Response(404, b"", meta)
        if raw:
            return Response(
                200,
                entries[0].value or b"",
                {
                    **meta,
                    "Content-Type": "text/plain",
                    "X-Content-Type-Options": "nosniff",
                    "Content-Security-Policy": "sandbox",
                },
            )
        return self.api.json(request, [render.dir_entry(e) for e in entries], headers=meta)

    def _keys(self, request: Request, prefix: str, options: QueryOptions) -> Response | Deferred:
        separator = ""
        if request.has("seperator"):
            separator = request.get("seperator")
        if request.has("separator"):
            separator = request.get("separator")
        kv = self.api.state.kv
        self.api.require_local_dc(options.datacenter)

        def keys(result: QueryResult[list[str]]) -> Response:
            meta = self.api.meta(result.index)
            if not result.value and prefix != "":
                return Response(404, b"", meta)
            return self.api.json(request, result.value, headers=meta)

        return self.api.respond(request, options, lambda: kv.list_keys(prefix, separator), keys)

    def _put(self, request: Request, key: str, datacenter: str) -> Response:
        _missing_key(key)
        _conflicting(request, "cas", "acquire", "release")
        flags = parse_uint(request.get("flags")) if request.has("flags") else 0
        cas = parse_uint(request.get("cas")) if request.has("cas") else None
        if request.content_length > KV_MAX_VALUE_SIZE:
            raise TooLarge(
                f"Request body({request.content_length} bytes) too large, max size: "
                f"{KV_MAX_VALUE_SIZE} bytes. See {KV_SIZE_DOC}."
            )
        self.api.require_local_dc(datacenter)
        try:
            body = request.body()
        except IncompleteBody:
            # KVSPut copies the body itself and returns io.Copy's error: a plain 500.
            raise PlainError(500, "unexpected EOF") from None
        value = body if body else None
        state = self.api.state
        if request.has("release"):
            result = state.kv_release(key, value, flags, request.get("release"))
        elif request.has("acquire"):
            result = state.kv_acquire(key, value, flags, request.get("acquire"))
        elif cas is not None:
            result = state.kv_cas(key, value, flags, cas)
        else:
            result = state.kv_set(key, value, flags)
        return self.api.json(request, result)

    def _delete(self, request: Request, key: str, datacenter: str) -> Response:
        _conflicting(request, "recurse", "cas")
        recurse = request.has("recurse")
        if not recurse:
            _missing_key(key)
        cas = parse_uint(request.get("cas")) if request.has("cas") else None
        self.api.require_local_dc(datacenter)
        state = self.api.state
        if cas is not None:
            return self.api.json(request, state.kv_delete_cas(key, cas))
        if recurse:
            state.kv_delete_tree(key)
        else:
            state.kv_delete(key)
        return self.api.json(request, True)
