"""Starlette on uvicorn + httpx: two requests refresh one OAuth token, and the first token
is revoked under the second request.

The identity provider and the orders API run in one Starlette application served by
uvicorn inside the scenario on ``auth.internal:8080`` (``uvicorn.Server.serve()``). It
rotates tokens: a refresh issues a new access token and revokes the previous one, so only the
latest token is accepted. The client is an ``httpx.AsyncClient`` with its default transport
(real connections, here over the simulated network), wrapped in :class:`ApiClient`, which
refreshes its access token when it has none.

Two jobs use one ``ApiClient``: the sync job lists orders at once; the report job first
fetches the public report settings, then lists orders. In the stock order the sync job's
refresh completes while the report job is still fetching its settings, so the report job
finds the token and reuses it. If the settings come back first, the report job also finds
no token and refreshes: the provider issues a second token and revokes the first, and
whichever job still holds the first one gets 401 from the orders API. The fixed client
refreshes behind an ``asyncio.Lock`` and checks for a token again once it holds the lock,
so concurrent callers share a single refresh.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import httpcore  # noqa: F401  (imported here, not at the first AsyncClient(): see below)
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# httpx imports httpcore at its first AsyncClient(), and httpcore imports trio, whose import
# runs ldconfig in a subprocess: a run refuses that, so the import is done here, once.

BASE = "http://auth.internal:8080"


def make_app() -> Starlette:
    issued: list[str] = []

    async def token(request: Request) -> JSONResponse:
        form = parse_qs((await request.body()).decode())
        if form.get("refresh_token") != ["rt-1"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        issued.append(f"at-{len(issued) + 1}")
        return JSONResponse({"access_token": issued[-1], "token_type": "Bearer"})

    async def orders(request: Request) -> JSONResponse:
        if not issued or request.headers.get("Authorization") != f"Bearer {issued[-1]}":
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({"orders": [17, 42]})

    async def settings(request: Request) -> JSONResponse:
        return JSONResponse({"currency": "EUR"})

    return Starlette(routes=[Route("/oauth/token", token, methods=["POST"]),
                             Route("/orders", orders), Route("/reports/settings", settings)])


class ApiClient:
    def __init__(self, http: httpx.AsyncClient, *, fixed: bool) -> None:
        self.http = http
        self.fixed = fixed
        self.access_token: str | None = None
        self.refreshing = asyncio.Lock()

    async def _refresh(self) -> str:
        response = await self.http.post("/oauth/token", data={"grant_type": "refresh_token",
                                                              "refresh_token": "rt-1"})
        response.raise_for_status()
        token: str = response.json()["access_token"]
        self.access_token = token
        return token

    async def token(self) -> str:
        if self.fixed:
            async with self.refreshing:
                return self.access_token or await self._refresh()
        return self.access_token or await self._refresh()

    async def get(self, path: str) -> httpx.Response:
        token = await self.token()
        return await self.http.get(path, headers={"Authorization": f"Bearer {token}"})


async def sync_job(api: ApiClient) -> int:
    return (await api.get("/orders")).status_code


async def report_job(api: ApiClient) -> int:
    (await api.http.get("/reports/settings")).raise_for_status()
    return (await api.get("/orders")).status_code


async def _two_jobs(*, fixed: bool) -> None:
    config = uvicorn.Config(make_app(), host="auth.internal", port=8080, lifespan="off",
                            log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=BASE) as http:
            api = ApiClient(http, fixed=fixed)
            codes = await asyncio.gather(sync_job(api), report_job(api))
    finally:
        server.should_exit = True
        await serving
    assert codes == [200, 200], f"a job was refused by the orders API: {codes}"


async def token_refresh() -> None:
    """Two jobs share one API client whose token needs a refresh: both are served."""
    await _two_jobs(fixed=False)


async def token_refresh_fixed() -> None:
    await _two_jobs(fixed=True)
