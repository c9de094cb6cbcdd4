"""The one interception point: the HTTP clients of ``httpx`` and ``httpx2``.

The ``openai`` and ``anthropic`` SDKs send every request through an ``httpx2`` client, litellm
through the ``openai`` SDK or its own ``httpx`` clients. Each client picks a transport per request
in ``_transport_for_url``; while interception is active that method returns the chosen transport
wrapped, so a request is seen whatever transport the client was built with (connection pools,
proxies, litellm's aiohttp transport) and whenever it was built (module-level clients too).
Patching the transport classes instead would miss custom transports; patching the SDKs would
take one patch per SDK method.

A handler decides what happens to each request. It is written once, as a generator that yields
what it needs done (send a request, run something blocking) and returns the response; a sync
and an async driver run it, so sync and async clients share every line of the logic.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ..aio import running_asyncio

#: Set while the plugin's own client calls a model: those requests are never intercepted.
_internal: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "promptpert_internal", default=False
)

HTTP_MODULES = ("httpx2", "httpx")


@dataclass(frozen=True)
class Send:
    """Send *content* (None: the application's own request, as it was) through the transport."""

    content: bytes | None = None


@dataclass(frozen=True)
class Blocking:
    """Run *function* (it blocks); async drivers run it off the event loop where they can."""

    function: Callable[[], Any]


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, read whole: what the application gets and what the cache keeps."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


Step = Send | Blocking
Flow = Generator[Step, Any, Reply]


class Handler(Protocol):
    """What interception asks of its user (the pytest item, or ``cached()``)."""

    def flow(self, method: str, url: str, content: bytes) -> Flow | None:
        """The flow answering this request, or None to let it through untouched."""


_state_lock = threading.RLock()
_handlers: list[Handler] = []
_originals: dict[tuple[str, str], Any] = {}


@contextlib.contextmanager
def internal() -> Iterator[None]:
    """Requests made inside go straight through (the plugin's own model calls)."""
    token = _internal.set(True)
    try:
        yield
    finally:
        _internal.reset(token)


@contextlib.contextmanager
def intercepting(handler: Handler) -> Iterator[None]:
    """Route every model request made by ``httpx``/``httpx2`` clients inside through *handler*.

    Process-wide (requests from other threads are seen too: an application's worker threads,
    a test client's server thread); nested uses stack, the innermost handler wins. The HTTP
    libraries already imported are patched at once, and one imported inside when it is
    imported: none is imported here (``httpx`` alone costs ~18 MiB and tens of milliseconds,
    for every item of a run whose application may never use it).
    """
    _finish_imports_in_progress()
    with _state_lock:
        if not _handlers:
            _install()
        _handlers.append(handler)
    try:
        yield
    finally:
        with _state_lock:
            _handlers.remove(handler)
            if not _handlers:
                _uninstall()


def active() -> bool:
    return bool(_handlers)


def _finish_imports_in_progress() -> None:
    """Wait for an HTTP library another thread is importing right now (a prefetch importing
    litellm): until its import ends, its classes may not exist yet. Outside ``_state_lock``:
    that import may end in :class:`_PatchingLoader`, which takes it."""
    for name in HTTP_MODULES:
        spec = getattr(sys.modules.get(name), "__spec__", None)
        if getattr(spec, "_initializing", False):
            importlib.import_module(name)  # blocks on the module's import lock until it is done


def _install() -> None:
    for name in HTTP_MODULES:
        module = sys.modules.get(name)
        if module is not None:
            _patch(name, module)
    sys.meta_path.insert(0, _LATE_IMPORTS)


def _uninstall() -> None:
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_LATE_IMPORTS)
    for (name, cls_name), original in _originals.items():
        getattr(sys.modules[name], cls_name)._transport_for_url = original
    _originals.clear()


def _patch(name: str, module: Any) -> None:
    for cls_name in ("Client", "AsyncClient"):
        if (name, cls_name) in _originals:
            continue
        cls = getattr(module, cls_name)
        original = cls.__dict__["_transport_for_url"]
        _originals[(name, cls_name)] = original
        cls._transport_for_url = _patched(original, module)


class _LateImports(importlib.abc.MetaPathFinder):
    """Patches an HTTP library that is first imported while interception is on."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in HTTP_MODULES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None  # the other finders' business
        spec.loader = _PatchingLoader(spec.loader, fullname)
        return spec


class _PatchingLoader(importlib.abc.Loader):
    """The library's own loader, then the patch (while interception is still on)."""

    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        with _state_lock:
            if _handlers:
                _patch(self._name, module)

    def __getattr__(self, name: str) -> Any:  # resource readers and the like: the library's
        return getattr(self._loader, name)


_LATE_IMPORTS = _LateImports()


def _patched(original: Callable[[Any, Any], Any], module: Any) -> Callable[[Any, Any], Any]:
    def _transport_for_url(self: Any, url: Any) -> Any:
        transport = original(self, url)
        if _internal.get() or not _handlers:
            return transport
        return _Intercepting(transport, _handlers[-1], module)

    return _transport_for_url


class _Intercepting:
    """A transport that hands each request to the handler, the real transport underneath."""

    def __init__(self, transport: Any, handler: Handler, module: Any) -> None:
        self._transport = transport
        self._handler = handler
        self._module = module

    def _flow(self, request: Any) -> Flow | None:
        if request.method != "POST":
            return None
        try:
            content = request.content
        except Exception:  # a body that is not read yet is a stream: not an SDK's JSON call
            return None
        return self._handler.flow(request.method, str(request.url), content)

    def _rebuilt(self, request: Any, content: bytes | None) -> Any:
        if content is None:
            return request
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"content-length"]
        return self._module.Request(
            request.method,
            request.url,
            headers=headers,
            content=content,
            extensions=request.extensions,
        )

    def _response(self, reply: Reply, request: Any) -> Any:
        headers = [("content-type", reply.content_type), *reply.headers]
        return self._module.Response(
            reply.status, headers=headers, content=reply.body, request=request
        )

    def handle_request(self, request: Any) -> Any:
        flow = self._flow(request)
        if flow is None:
            return self._transport.handle_request(request)
        try:
            step = next(flow)
            while True:
                if isinstance(step, Blocking):
                    try:
                        result = step.function()
                    except Exception as exc:
                        step = flow.throw(exc)  # the flow's own error handling answers it
                    else:
                        step = flow.send(result)
                    continue
                try:
                    response = self._transport.handle_request(self._rebuilt(request, step.content))
                    try:
                        reply = _read(response, response.read())
                    finally:
                        response.close()
                except BaseException:
                    flow.close()  # lets the flow release what it holds (a cache lock)
                    raise
                step = flow.send(reply)
        except StopIteration as done:
            return self._response(done.value, request)

    async def handle_async_request(self, request: Any) -> Any:
        flow = self._flow(request)
        if flow is None:
            return await self._transport.handle_async_request(request)
        try:
            step = next(flow)
            while True:
                if isinstance(step, Blocking):
                    try:
                        result = await _off_loop(step.function)
                    except Exception as exc:
                        step = flow.throw(exc)
                    else:
                        step = flow.send(result)
                    continue
                rebuilt = self._rebuilt(request, step.content)
                try:
                    response = await self._transport.handle_async_request(rebuilt)
                    try:
                        reply = _read(response, await response.aread())
                    finally:
                        await response.aclose()
                except BaseException:
                    flow.close()
                    raise
                step = flow.send(reply)
        except StopIteration as done:
            return self._response(done.value, request)

    def close(self) -> None:
        self._transport.close()

    async def aclose(self) -> None:
        await self._transport.aclose()


_HOP_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding", "connection"})


def _read(response: Any, body: bytes) -> Reply:
    headers = tuple(
        (k, v)
        for k, v in response.headers.multi_items()
        if k.lower() not in _HOP_HEADERS and k.lower() != "content-type"
    )
    return Reply(
        status=response.status_code,
        content_type=response.headers.get("content-type", ""),
        body=body,
        headers=headers,
    )


async def _off_loop(function: Callable[[], Any]) -> Any:
    """*function*'s result; in a thread on asyncio, inline on other loops (trio)."""
    asyncio = running_asyncio()
    if asyncio is None:
        return function()
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(None, context.run, function)
