"""Which HTTP request a task carries, named for people: ``POST /redeem/WELCOME10 #2 → redeem``.

A traced run hands :class:`RequestNames` each task's await chain (frames, outermost first)
before its first step and after each of its steps; it fills the run's ``Trace.labels``
(task name as steps show it -> label) in place. The contract:

- A task is labelled when some frame of its chain holds an HTTP request: an ASGI ``scope``
  (httpx's ``ASGITransport``, Starlette, FastAPI, uvicorn: the server side), a request object
  with ``method`` and ``path`` or ``match_info`` (aiohttp's server), or one with ``method``
  and ``url`` (httpx and aiohttp clients: the client side). The server side wins when both
  are in one chain (httpx over ASGI runs the app inside the caller's task). A request that
  begins and ends inside one step is seen only if its task was started with it (uvicorn's
  per-request task) or already held it.
- The label is ``METHOD PATH``, then ``#k`` when several requests of the run share method,
  path and side (k in order of first appearance, so a schedule always gives the same
  labels), then ``→ handler`` when the handler is known: the routed endpoint
  (``scope["endpoint"]``), aiohttp's matched handler, else the first user-code function
  below the request.
- A task that carries several requests one after another keeps the first one's label and
  says how many followed. A task that carries a request another task already serves (a
  helper task of the framework) gets that request's label and its own function's name.
- The scenario's own task (``main``) is never labelled: it is the scenario, even while it
  sends a request itself.
- A handler task of a plain stream server (``asyncio.start_server``, trio's
  ``serve_listeners``) that carries no HTTP request is named by its handler and the peer:
  ``handle ← 10.0.0.2:40001``.
- Looking is read-only: only objects held in variables named ``scope``, ``request`` or
  ``req`` (and a starting task's ``self.scope``, read without running a property) are
  asked for ``method``, ``path``, ``url``; an error there means "not a request".

Nothing here imports a web library: requests are recognised by duck typing on frame locals,
and only frames whose code has a variable of a known name are read (decided once per code
object), so a run whose tasks never touch HTTP pays one dictionary lookup per frame per
traced step, and untraced runs pay nothing.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import CodeType, FrameType

from explorer._locations import is_user_file

# Local names that may hold a request: ASGI scopes, request objects, aiohttp's ``req``.
_NAMES = ("scope", "request", "req")
# The scenario's own task keeps its name: it is the scenario, whatever it awaits.
_SCENARIO = "main"


@dataclass(frozen=True, slots=True)
class Found:
    """One request seen in a task's chain: ``key`` is the object that is the request (its
    identity tells requests apart), ``depth`` the index of the frame holding it; ``routed``
    when ``handler`` is the one routing chose, not the user function seen below so far
    (which may be a middleware, before routing)."""

    key: object
    server: bool
    method: str
    path: str
    handler: str | None
    depth: int
    routed: bool = False


@dataclass(slots=True)
class _Request:
    found: Found
    owner: str
    owner_inside: bool


class RequestNames:
    """Labels for the tasks of one traced run that carry HTTP requests (see the module)."""

    __slots__ = ("_by_key", "_codes", "_held", "_looked", "_same", "_tasks", "labels")

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self._codes: dict[CodeType, tuple[str, ...]] = {}
        # id(request object) -> the request; the record holds the object, so ids stay unique.
        self._by_key: dict[int, _Request] = {}
        # (server, method, path) -> requests in order of first appearance: the ordinals.
        self._same: dict[tuple[bool, str, str], list[_Request]] = {}
        # Task -> the requests it carried, in order.
        self._tasks: dict[str, list[_Request]] = {}
        # Tasks already checked for being a stream server's connection handler.
        self._looked: set[str] = set()
        self._held: list[object] = []

    def starting(self, task: str, frames: Sequence[FrameType]) -> None:
        """Before the first step of ``task``: a request task may finish in that one step
        (a handler that never waits), so look at what it was started with: the request
        its coroutine was given, or the one its object holds (uvicorn's
        ``RequestResponseCycle.run_asgi(self, app)`` holds ``self.scope``)."""
        if not frames:
            return
        owner = frames[0].f_locals.get("self")
        held = inspect.getattr_static(owner, "scope", None) if owner is not None else None
        scope = _read(held, frames, 0) if isinstance(held, Mapping) else None
        self.observe(task, frames, scope)

    def observe(self, task: str, frames: Sequence[FrameType], found: Found | None = None
                ) -> None:
        """After a step of ``task`` (named as steps name it): note the request its await
        chain ``frames`` (outermost first; empty once the task is done) carries, if any,
        and update the labels. ``found`` is a request already found for it."""
        if task == _SCENARIO:
            return
        self._route(task)
        found = find_request(frames, self._codes) or found
        if found is None:
            if frames and task not in self._looked:
                self._looked.add(task)
                peer = stream_peer(frames[0])
                if peer is not None and task not in self._tasks:
                    self.labels[task] = peer
            return
        # The task running the handler owns the request; a task that only holds it (the
        # connection task awaiting aiohttp's request task) gets its label with its name.
        inside = any(is_user_file(f.f_code.co_filename) for f in frames[found.depth:])
        request = self._by_key.get(id(found.key))
        carried = self._tasks.setdefault(task, [])
        changed = False
        if request is None:
            if carried and not found.server and _client_of(found, carried[-1].found):
                # httpx over ASGI, seen from the client after the app: the same request.
                self._absorb(found.key, carried[-1])
                return
            request = self._add(task, found, inside)
            changed = True
        elif _better(found, request.found):
            request.found = found
            changed = True
        if inside and not request.owner_inside and request.owner != task:
            request.owner, request.owner_inside = task, True
            changed = True
        if not any(r is request for r in carried):
            if carried and _client_of(carried[-1].found, request.found):
                # httpx over ASGI: the client's request reached the app; one request.
                client = carried.pop()
                self._same[_kind(client.found)].remove(client)
                self._absorb(client.found.key, request)
            carried.append(request)
            changed = True
        if changed:
            self._relabel()

    def _route(self, task: str) -> None:
        """Routing may have chosen the handler of the task's request during a step that
        also left the handler (a request that never waits inside its endpoint): read the
        request object again, not the frames."""
        carried = self._tasks.get(task)
        if not carried or carried[-1].found.routed:
            return
        request = carried[-1]
        again = _read(request.found.key, (), 0)
        if again is not None and again.routed:
            request.found = dataclasses.replace(request.found, handler=again.handler,
                                                routed=True)
            self._relabel()

    def _add(self, task: str, found: Found, inside: bool) -> _Request:
        request = _Request(found, task, inside)
        self._same.setdefault(_kind(found), []).append(request)
        self._by_key[id(found.key)] = request
        return request

    def _absorb(self, key: object, request: _Request) -> None:
        """From now on the request object ``key`` is ``request`` (held, so its id stays
        unique for the run)."""
        self._by_key[id(key)] = request
        self._held.append(key)

    def _relabel(self) -> None:
        # Runs only when something changed (a new request, a handler, an owner), which
        # happens a few times per request, not per step.
        for task, carried in self._tasks.items():
            if carried:
                self.labels[task] = self._label(task, carried)

    def _label(self, task: str, carried: list[_Request]) -> str:
        first = carried[0]
        same = self._same[_kind(first.found)]
        text = request_label(first.found, same.index(first) + 1, len(same))
        if first.owner != task:
            text += f" ({task.rsplit('/', 1)[-1]})"
        more = len(carried) - 1
        if more:
            text += f" (then {more} more request{'s' if more > 1 else ''})"
        return text


def _better(new: Found, old: Found) -> bool:
    """``new`` names the handler better: routing has chosen it, or none was known."""
    return (new.routed and not old.routed) or (new.handler is not None and old.handler is None)


def _kind(found: Found) -> tuple[bool, str, str]:
    return found.server, found.method, found.path


def _client_of(a: Found, b: Found) -> bool:
    """One of the two is the client's view and the other the app's view of one request
    (httpx over ASGI runs both in one task)."""
    return a.server != b.server and (a.method, a.path) == (b.method, b.path)


def request_label(found: Found, ordinal: int, of: int) -> str:
    """``POST /redeem/WELCOME10 #2 → redeem``: the ordinal only when ``of`` > 1."""
    text = f"{found.method} {found.path}"
    if of > 1:
        text += f" #{ordinal}"
    if found.handler:
        text += f" → {found.handler}"
    return text


def find_request(frames: Sequence[FrameType],
                 codes: dict[CodeType, tuple[str, ...]]) -> Found | None:
    """The request the chain carries: the outermost server-side one, else the innermost
    client-side one, else None. ``codes`` caches, per code object, which of its variables
    may hold a request.

    The outermost server-side view is the request's identity: middleware and routers may
    pass copies of the ASGI scope inwards (uvicorn's ``self.scope``, then a copy), and
    routing writes the endpoint into the copy it was given, so the handler is taken from
    the innermost routed view of the same method and path."""
    client: Found | None = None
    outer: Found | None = None
    routed: Found | None = None
    for depth in range(len(frames) - 1, -1, -1):
        frame = frames[depth]
        code = frame.f_code
        names = codes.get(code)
        if names is None:
            names = codes[code] = tuple(
                n for n in _NAMES if n in code.co_varnames or n in code.co_cellvars)
        if not names:
            continue
        local = frame.f_locals
        for name in names:
            found = _read(local.get(name), frames, depth)
            if found is None:
                continue
            if found.server:
                outer = found
                if routed is None and found.routed:
                    routed = found
            elif client is None:
                client = found
    if outer is None:
        return client
    if routed is not None and not outer.routed and \
            (routed.method, routed.path) == (outer.method, outer.path):
        return dataclasses.replace(outer, handler=routed.handler, routed=True)
    return outer


def _read(value: object, frames: Sequence[FrameType], depth: int) -> Found | None:
    try:
        return _recognise(value, frames, depth)
    except Exception:  # noqa: BLE001 - a property of some user object failed: not a request
        return None


def _recognise(value: object, frames: Sequence[FrameType], depth: int) -> Found | None:
    if value is None:
        return None
    if isinstance(value, Mapping) and "type" in value:  # aiohttp's request is a Mapping too
        return _from_scope(value, value, frames, depth)
    method = getattr(value, "method", None)
    if not isinstance(method, str):
        return None
    scope = getattr(value, "scope", None)
    if isinstance(scope, Mapping):  # Starlette's Request: the scope is the request
        return _from_scope(scope, scope, frames, depth)
    if _has(value, "match_info"):  # aiohttp's server request
        path = getattr(value, "path", None)
        if not isinstance(path, str):
            return None
        # ``match_info`` asserts once resolved only; read the slot routing fills.
        info = getattr(value, "_match_info", None)
        handler = _name_of(getattr(info, "handler", None)) if info is not None else None
        return Found(value, True, method, path,
                     handler or _user_function_below(frames, depth), depth,
                     handler is not None)
    url = getattr(value, "url", None)
    path = getattr(url, "path", None)
    if isinstance(path, str):  # an httpx or aiohttp client request
        return Found(value, False, method, path or "/", None, depth)
    return None


def _has(value: object, name: str) -> bool:
    """Whether ``value`` has attribute ``name``, without running a property (aiohttp's
    ``match_info`` asserts before routing)."""
    return inspect.getattr_static(value, name, None) is not None


def _from_scope(scope: Mapping[object, object], key: object, frames: Sequence[FrameType],
                depth: int) -> Found | None:
    if scope.get("type") != "http":
        return None
    method, path = scope.get("method"), scope.get("path")
    if not isinstance(method, str) or not isinstance(path, str):
        return None
    handler = _name_of(scope.get("endpoint"))
    return Found(key, True, method, path, handler or _user_function_below(frames, depth),
                 depth, handler is not None)


def _name_of(handler: object) -> str | None:
    if handler is None:
        return None
    inner = getattr(handler, "func", None)  # functools.partial
    if inner is not None and callable(inner):
        handler = inner
    name = getattr(handler, "__name__", None)
    return name if isinstance(name, str) else type(handler).__name__


def _user_frame_below(frames: Sequence[FrameType], depth: int) -> FrameType | None:
    for frame in frames[depth + 1:]:
        if is_user_file(frame.f_code.co_filename):
            return frame
    return None


def _user_function_below(frames: Sequence[FrameType], depth: int) -> str | None:
    frame = _user_frame_below(frames, depth)
    if frame is None:
        return None
    code = frame.f_code
    return getattr(code, "co_qualname", code.co_name).rpartition("<locals>.")[2]


def stream_peer(outer: FrameType) -> str | None:
    """``handle ← 10.0.0.2:40001`` when ``outer`` (a task's outermost frame) is a stream
    server's connection handler: called with a reader and a writer, as
    ``asyncio.start_server`` calls it, or trio's ``serve_listeners`` running a handler on
    a stream (``_run_handler(stream, handler)``)."""
    code = outer.f_code
    if code.co_argcount < 2:
        return None
    local = outer.f_locals
    args = [local.get(n) for n in code.co_varnames[:code.co_argcount]]
    try:
        return _handler_and_peer(code.co_name, args)
    except Exception:  # noqa: BLE001 - some argument's attribute failed: not a connection
        return None


def _handler_and_peer(function: str, args: list[object]) -> str | None:
    writer = next((a for a in args if _has(a, "get_extra_info") and _has(a, "drain")), None)
    if writer is not None and any(_has(a, "readexactly") for a in args):
        peer = _address(writer.get_extra_info("peername"))  # type: ignore[attr-defined]
        return f"{function} ← {peer}" if peer else function
    stream = next((a for a in args if _has(a, "send_all") and _has(a, "socket")), None)
    handler = next((a for a in args if inspect.isfunction(a) or inspect.ismethod(a)), None)
    if stream is None or handler is None:
        return None
    name = _name_of(handler) or function
    peer = _address(stream.socket.getpeername())  # type: ignore[attr-defined]
    return f"{name} ← {peer}" if peer else name


def _address(peer: object) -> str | None:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer) if isinstance(peer, str) and peer else None
