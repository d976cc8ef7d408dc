"""HTTP APIs as objects under a linearizability check: an app behind a client, requests as
operations, responses as results.

Contract:

- :func:`asgi_client` turns an app factory (Starlette, FastAPI, any ASGI callable) into an
  object factory for :func:`explorer.check_linearizable`: every call builds a **fresh app**
  and returns an async context manager that yields an ``httpx.AsyncClient`` bound to it by
  ``httpx.ASGITransport`` (in memory: no socket, every await of the app a scheduling point),
  and closes the client on exit. The sequential executions get fresh apps too, so the
  specification is the app itself, one request at a time.
- :func:`aiohttp_client` does the same for an ``aiohttp.web.Application``: every object
  starts a fresh app on the run's simulated network (``http://api.internal``, no real
  socket; see docs/services.md) and yields a client over an ``aiohttp.ClientSession``; on
  exit the session closes and the app is cleaned up, inside the run.
- :func:`http_operation` is one request as an operation. Path placeholders (``{code}``) are
  filled from keyword values (or ``path_params``, for a placeholder named like one of the
  function's own parameters), each a Hypothesis strategy (drawn per call) or a constant; a
  ``json`` body may be a constant or a strategy too (``None``: no body). The drawn values
  are the operation's arguments, in the order the keywords were given, then the body: what
  a failure shows and the corpus stores.
- The result of a request is :class:`HttpResult` ``(status, body)``: the body decoded as
  JSON when the response says so, else its text. Headers are not compared (dates, request
  ids). A per-operation ``normalize`` hook maps the body before comparison (drop a
  timestamp or a generated id: :func:`ignore_fields`); a transport error or an exception the
  app raises (with ``raise_app_exceptions=True``) is the operation's exception, compared by
  type and message like any other.

httpx and aiohttp are imported when a client is made; this module itself (and Hypothesis
with it) when one of its names is first used, never by importing the explorer.
"""

from __future__ import annotations

import inspect
import json as jsonlib
import re
import string
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from explorer._errors import UsageError
from explorer._linearize._model import Operation, operation

if TYPE_CHECKING:
    import aiohttp
    import httpx

JSON: TypeAlias = Any
"""A decoded JSON value (dict, list, str, int, float, bool or None)."""

Normalize: TypeAlias = Callable[[JSON], JSON]

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PLACEHOLDER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class HttpResult(NamedTuple):
    """What one request returned, as compared with the sequential executions."""

    status: int
    body: JSON

    def __repr__(self) -> str:
        return f"{self.status} {self.body!r}"


def asgi_client(make_app: Callable[[], Any], *, base_url: str = "http://testserver",
                raise_app_exceptions: bool = False,
                ) -> Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]:
    """An object factory: a fresh ``make_app()`` behind an ``httpx.AsyncClient`` per object.

    ``raise_app_exceptions=False`` (the default) turns an exception the app lets escape into
    a 500 response, as a server would; ``True`` makes it the request's exception.
    """
    if not callable(make_app) or _is_asgi_app(make_app):
        raise UsageError(
            f"asgi_client() needs a callable that builds the app, got {make_app!r}. Pass the "
            "factory itself, not an app built once: asgi_client(make_app), not "
            "asgi_client(make_app()); every run needs a fresh app.")

    @asynccontextmanager
    async def client() -> AsyncIterator[httpx.AsyncClient]:
        import httpx

        app = make_app()
        if not callable(app):
            raise UsageError(
                f"asgi_client(): {_name(make_app)}() returned {app!r}, which is not an ASGI "
                "app. Return the Starlette or FastAPI application (or any ASGI callable).")
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
            yield http

    # Failures name the scenario after the factory: after the user's module, not this one.
    client.__name__ = client.__qualname__ = f"asgi_client({_name(make_app)})"
    client.__module__ = getattr(make_app, "__module__", None) or __name__
    return client


class AiohttpClient:
    """An ``aiohttp.ClientSession`` bound to one app's address: what :func:`aiohttp_client`
    yields, and what the operations of :func:`http_operation` send requests through."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def fetch(self, method: str, path: str, *, params: Mapping[str, str] | None,
                    headers: Mapping[str, str] | None, body: tuple[JSON, ...]
                    ) -> HttpResult:
        """Send one request; ``body`` is ``(json,)`` or ``()`` for none."""
        options: dict[str, Any] = {"params": params, "headers": headers}
        if body:
            options["json"] = body[0]
        async with self.session.request(method, self.base_url + path, **options) as response:
            return HttpResult(response.status,
                              _decode(response.headers.get("Content-Type", ""),
                                      await response.text()))


def aiohttp_client(make_app: Callable[[], Any], *, host: str = "api.internal",
                   port: int = 80) -> Callable[[], AbstractAsyncContextManager[AiohttpClient]]:
    """An object factory: a fresh ``make_app()`` (an ``aiohttp.web.Application``) served on
    the run's simulated network at ``host:port``, behind an :class:`AiohttpClient`."""
    # An aiohttp Application is callable (it returns itself): recognise it by its router.
    if not callable(make_app) or hasattr(make_app, "router") or _is_asgi_app(make_app):
        raise UsageError(
            f"aiohttp_client() needs a callable that builds the app, got {make_app!r}. Pass "
            "the factory itself: aiohttp_client(make_app), not aiohttp_client(make_app()); "
            "every run needs a fresh app.")

    @asynccontextmanager
    async def client() -> AsyncIterator[AiohttpClient]:
        import aiohttp
        from aiohttp import web

        app = make_app()
        if not isinstance(app, web.Application):
            raise UsageError(
                f"aiohttp_client(): {_name(make_app)}() returned {app!r}, not an "
                "aiohttp.web.Application. Return the application; for Starlette or FastAPI "
                "use asgi_client(make_app).")
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            async with aiohttp.ClientSession() as session:
                yield AiohttpClient(session, f"http://{host}:{port}")
        finally:
            # Stop the app while the run is still going, so that no handler outlives it.
            await runner.cleanup()

    client.__name__ = client.__qualname__ = f"aiohttp_client({_name(make_app)})"
    client.__module__ = getattr(make_app, "__module__", None) or __name__
    return client


def http_operation(method: str, path: str, *, json: Any = None,
                   params: Mapping[str, str] | None = None,
                   headers: Mapping[str, str] | None = None, name: str | None = None,
                   normalize: Normalize | None = None,
                   path_params: Mapping[str, Any] | None = None, **values: Any) -> Operation:
    """One request as an operation: ``http_operation("POST", "/coupons/{code}/redeem",
    code=st.sampled_from(["A", "B"]))``.

    Each keyword in ``values`` fills the placeholder of that name in ``path``, from a
    Hypothesis strategy (drawn for every call) or a constant; a placeholder named like one
    of this function's own parameters (``{name}``, ``{path}``) goes in ``path_params``
    instead, a mapping of the same kind. ``json`` is the request body,
    a constant or a strategy. The operation's result is an :class:`HttpResult`, its body
    passed through ``normalize`` when given. The name defaults to ``"METHOD path"``.
    """
    verb = method.upper() if isinstance(method, str) else method
    if verb not in METHODS:
        raise UsageError(
            f"http_operation(): unknown method {method!r}. Use one of "
            f"{', '.join(sorted(METHODS))}, for example http_operation('POST', '/items').")
    if not isinstance(path, str) or not path.startswith("/"):
        raise UsageError(
            f"http_operation(): the path must be a string starting with '/', got {path!r}; "
            "the client's base URL supplies the host (for example '/coupons/{code}/redeem').")
    if name is not None and not isinstance(name, str):
        raise UsageError(
            f"http_operation({verb!r}, {path!r}): name={name!r} is the operation's label "
            "and must be a string; to fill a placeholder called {name}, pass "
            "path_params={'name': <strategy or value>}.")
    if path_params is not None:
        clash = sorted(set(path_params) & set(values))
        if clash:
            raise UsageError(
                f"http_operation({verb!r}, {path!r}): {clash} given both as keywords and in "
                "path_params; give each placeholder once.")
        values = {**values, **path_params}
    placeholders = _placeholders(path)
    missing = [p for p in placeholders if p not in values]
    extra = [v for v in values if v not in placeholders]
    if missing or extra:
        raise UsageError(
            f"http_operation({verb!r}, {path!r}): the path's placeholders are "
            f"{placeholders or 'none'} but the keyword values given are {sorted(values)}. "
            + (f"Give a value or a strategy for {missing} (for example {missing[0]}="
               "st.sampled_from(['A', 'B'])). " if missing else "")
            + (f"Remove {extra} or add '{{{extra[0]}}}' to the path." if extra else ""))
    names = list(values)
    has_body = json is not None
    strategies = [_strategy(values[n]) for n in names]
    if has_body:
        strategies.append(_strategy(json))
    fixed_params = dict(params) if params is not None else None
    fixed_headers = dict(headers) if headers is not None else None

    async def request(client: httpx.AsyncClient | AiohttpClient, *args: Any) -> HttpResult:
        filled = path.format(**dict(zip(names, args, strict=False)))
        body = (args[len(names)],) if has_body else ()
        if isinstance(client, AiohttpClient):
            result = await client.fetch(verb, filled, params=fixed_params,
                                        headers=fixed_headers, body=body)
        else:
            result = await _httpx_fetch(client, verb, filled, params=fixed_params,
                                        headers=fixed_headers, body=body)
        if normalize is not None:
            return HttpResult(result.status, normalize(result.body))
        return result

    label = name if name is not None else f"{verb} {path}"
    request.__name__ = request.__qualname__ = label
    return operation(request, *strategies, name=label)


async def _httpx_fetch(client: httpx.AsyncClient, method: str, path: str, *,
                       params: Mapping[str, str] | None, headers: Mapping[str, str] | None,
                       body: tuple[JSON, ...]) -> HttpResult:
    if body:
        response = await client.request(method, path, params=params, headers=headers,
                                        json=body[0])
    else:
        response = await client.request(method, path, params=params, headers=headers)
    return HttpResult(response.status_code,
                      _decode(response.headers.get("content-type", ""), response.text))


def ignore_fields(*names: str) -> Normalize:
    """A ``normalize`` hook that removes the keys ``names`` wherever they appear in a JSON
    body (nested objects and lists included): timestamps, generated ids, request ids."""
    if not names or not all(isinstance(n, str) for n in names):
        raise UsageError(
            f"ignore_fields() needs one or more key names, got {names!r}; for example "
            "ignore_fields('id', 'created_at').")
    dropped = frozenset(names)

    def strip(body: JSON) -> JSON:
        if isinstance(body, dict):
            return {k: strip(v) for k, v in body.items() if k not in dropped}
        if isinstance(body, list):
            return [strip(v) for v in body]
        return body

    strip.__name__ = strip.__qualname__ = f"ignore_fields{tuple(sorted(dropped))!r}"
    return strip


def _placeholders(path: str) -> list[str]:
    found = []
    for _, field, spec, conversion in string.Formatter().parse(path):
        if field is None:
            continue
        if not _PLACEHOLDER.match(field) or spec or conversion:
            raise UsageError(
                f"http_operation(): the placeholder {{{field}}} in {path!r} is not a plain "
                "name; write placeholders as {name} (for example '/coupons/{code}/redeem').")
        found.append(field)
    return found


def _strategy(value: Any) -> Any:
    """A Hypothesis strategy as given; a constant as ``just(constant)``."""
    from hypothesis import strategies as st
    from hypothesis.strategies import SearchStrategy

    return value if isinstance(value, SearchStrategy) else st.just(value)


def _decode(content_type: str, text: str) -> JSON:
    if content_type.split(";")[0].strip().endswith("json"):
        try:
            return jsonlib.loads(text)
        except ValueError:
            pass  # a body that says JSON but is not: compare its text
    return text


def _is_asgi_app(fn: Callable[..., Any]) -> bool:
    """An ASGI app takes (scope, receive, send); a factory takes nothing."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False  # a builtin without a signature: let the call say what is wrong
    required = [p for p in parameters if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(required) >= 3


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
