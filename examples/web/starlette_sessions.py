"""Starlette: a logout races an authenticated request (auth bypass).

``GET /notes`` checks the session token, awaits the access-control service, then reads the
user's private notes. ``POST /logout`` revokes the token after awaiting the CSRF check and
the "signed out" push to the user's other devices. In the stock order the notes are read
before the revocation, but if the logout's awaits are faster the notes are read after the
token was revoked: a request authorised by a dead session is served private data. The
fixed handler re-validates the session at the moment it reads, with no await in between.
"""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class Sessions:
    """Server-side sessions, the private data, and an audit log of who saw what when."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {"t-alice": "alice"}
        self.notes: dict[str, str] = {"alice": "door code 4711"}
        self.audit: list[tuple[str, str]] = []

    def revoke(self, token: str) -> None:
        self.tokens.pop(token, None)
        self.audit.append(("revoke", token))

    def read_notes(self, token: str, user: str) -> str:
        self.audit.append(("read", token))
        return self.notes[user]


async def access_check(user: str) -> None:
    await asyncio.sleep(0)


async def verify_csrf(request: Request) -> None:
    await asyncio.sleep(0)


async def notify_devices(user: str) -> None:
    await asyncio.sleep(0)


def make_app(*, fixed: bool) -> tuple[Starlette, Sessions]:
    sessions = Sessions()

    async def notes(request: Request) -> Response:
        token = request.headers.get("authorization", "")
        user = sessions.tokens.get(token)
        if user is None:
            return JSONResponse({"error": "not signed in"}, status_code=401)
        await access_check(user)
        if fixed and sessions.tokens.get(token) != user:
            return JSONResponse({"error": "session ended"}, status_code=401)
        return JSONResponse({"notes": sessions.read_notes(token, user)})

    async def logout(request: Request) -> Response:
        token = request.headers.get("authorization", "")
        await verify_csrf(request)
        user = sessions.tokens.get(token)
        if user is not None:
            await notify_devices(user)
            sessions.revoke(token)
        return Response(status_code=204)

    app = Starlette(routes=[Route("/notes", notes), Route("/logout", logout, methods=["POST"])])
    return app, sessions


async def _read_while_logging_out(*, fixed: bool) -> None:
    app, sessions = make_app(fixed=fixed)
    transport = httpx.ASGITransport(app=app)
    auth = {"Authorization": "t-alice"}
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        read, out = await asyncio.gather(client.get("/notes", headers=auth),
                                          client.post("/logout", headers=auth))
    assert out.status_code == 204 and read.status_code in (200, 401)
    events = [event for event, _ in sessions.audit]
    revoked_at = events.index("revoke")
    assert "read" not in events[revoked_at:], \
        f"private notes served after the session was revoked: {events}"


async def logout_bypass() -> None:
    """Alice reads her notes while she logs out: no read may follow the revocation."""
    await _read_while_logging_out(fixed=False)


async def logout_bypass_fixed() -> None:
    await _read_while_logging_out(fixed=True)
