"""Counts of the gRPC calls a node serves, by method and status code (an aio interceptor).

The counters are plain dicts of ints written on the event loop and copied by the metrics
scrape (kvraft/server/metrics.py exports them as ``grpc_server_started_total`` and
``grpc_server_handled_total``, the names go-grpc-prometheus made familiar). Per call the
interceptor costs one dict lookup to find the wrapped handler (cached per method), one
extra coroutine or async-generator frame, and two dict increments. A ``Batch`` stream is
one call however many requests it carries.

Bytes received on the Raft service (peer traffic) are counted exactly and for free in its
request deserializer, which sees every raw message.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

_RAFT_PREFIX = "/kvraft.v1.Raft/"
_OK = "OK"
_KINDS = {
    (False, False): "unary",
    (False, True): "server_stream",
    (True, False): "client_stream",
    (True, True): "bidi_stream",
}


def _code_of(context: Any, exc: BaseException | None) -> str:
    """The status a finished call ended with (as the client saw it)."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if exc is None:
        return _OK
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return "CANCELLED"
    return "UNKNOWN"  # grpc answers an unhandled exception with UNKNOWN


class GrpcMetrics(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Pass to ``grpc.aio.server(interceptors=[...])``; read the counters at scrape time."""

    def __init__(self) -> None:
        self.started: dict[tuple[str, str], int] = {}  # (method path, kind) -> calls begun
        self.handled: dict[tuple[str, str, str], int] = {}  # (+ status code) -> calls ended
        self.raft_bytes_received = 0  # raw bytes of every message received on Raft calls
        self._wrapped: dict[str, tuple[Any, Any]] = {}  # method -> (handler, wrapped)

    async def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Any
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED itself
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            cached = (handler, self._wrap(method, handler))
            self._wrapped[method] = cached
        return cached[1]

    def _wrap(self, method: str, handler: Any) -> Any:
        kind = _KINDS[(bool(handler.request_streaming), bool(handler.response_streaming))]
        started_key = (method, kind)
        started, handled = self.started, self.handled

        def begin() -> None:
            started[started_key] = started.get(started_key, 0) + 1

        def end(context: Any, exc: BaseException | None) -> None:
            key = (method, kind, _code_of(context, exc))
            handled[key] = handled.get(key, 0) + 1

        behavior = (handler.unary_unary or handler.unary_stream or handler.stream_unary
                    or handler.stream_stream)
        if inspect.isasyncgenfunction(behavior):
            wrapped = _wrap_generator(behavior, begin, end)
        elif inspect.iscoroutinefunction(behavior):
            wrapped = _wrap_coroutine(behavior, begin, end)
        else:  # a synchronous handler: nothing of ours serves one; leave it alone
            return handler
        deserializer = handler.request_deserializer
        if method.startswith(_RAFT_PREFIX) and deserializer is not None:
            deserializer = self._counting(deserializer)
        make = {
            "unary": grpc.unary_unary_rpc_method_handler,
            "server_stream": grpc.unary_stream_rpc_method_handler,
            "client_stream": grpc.stream_unary_rpc_method_handler,
            "bidi_stream": grpc.stream_stream_rpc_method_handler,
        }[kind]
        return make(wrapped, request_deserializer=deserializer,
                    response_serializer=handler.response_serializer)

    def _counting(self, deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        def deserialize(raw: bytes) -> Any:
            self.raft_bytes_received += len(raw)
            return deserializer(raw)

        return deserialize


Begin = Callable[[], None]
End = Callable[[Any, BaseException | None], None]


def _wrap_coroutine(behavior: Any, begin: Begin, end: End) -> Any:
    async def call(request: Any, context: Any) -> Any:
        begin()
        try:
            response = await behavior(request, context)
        except BaseException as exc:
            end(context, exc)
            raise
        end(context, None)
        return response

    return call


def _wrap_generator(behavior: Any, begin: Begin, end: End) -> Any:
    async def call(request: Any, context: Any) -> AsyncIterator[Any]:
        begin()
        responses = behavior(request, context)
        try:
            async for response in responses:
                yield response
        except BaseException as exc:
            end(context, exc)
            raise
        finally:
            await responses.aclose()  # closed early (cancelled): let it clean up now
        end(context, None)

    return call
