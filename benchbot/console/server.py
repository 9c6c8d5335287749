"""The console's web server: Starlette on uvicorn in a thread of the run, server-sent events for
the page, one POST for answers. Every request needs the console's random token."""
from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
import socket
import threading
from collections.abc import AsyncIterator, MutableMapping
from importlib import resources
from typing import Any

from benchbot.console.state import ConsoleState, Refused
from benchbot.core.errors import BenchbotError

MAX_BODY_BYTES = 4096
KEEPALIVE_S = 15.0
STATIC = {"console.js": "text/javascript", "console.css": "text/css"}
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                 b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
]


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Hub:
    """Fans the latest state snapshot out to every open event stream (latest wins: a slow page
    skips intermediate states, never shows an old one last)."""

    def __init__(self) -> None:
        self.latest = "{}"
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closed = False
        self._waiters: set[asyncio.Event] = set()

    @property
    def clients(self) -> int:
        """How many event streams (pages) are open."""
        return len(self._waiters)

    def publish(self, text: str) -> None:
        self.latest = text
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop stopped meanwhile
                pass

    def _wake(self) -> None:
        for ev in self._waiters:
            ev.set()

    async def stream(self) -> AsyncIterator[str]:
        ev = asyncio.Event()
        self._waiters.add(ev)
        try:
            yield f"retry: 1000\ndata: {self.latest}\n\n"
            while not self.closed:
                try:
                    await asyncio.wait_for(ev.wait(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                ev.clear()
                yield f"data: {self.latest}\n\n"
        finally:
            self._waiters.discard(ev)


def _page(token: str) -> str:
    html = resources.files("benchbot.console").joinpath("static/console.html").read_text(encoding="utf-8")
    return html.replace("{{token}}", token)  # token_urlsafe: [A-Za-z0-9_-] only, nothing to escape


def build_app(state: ConsoleState, hub: Hub, token: str) -> Any:
    """The ASGI app. Without the token (query `token` or header `x-benchbot-token`): 403."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    async def index(request: Request) -> Response:
        return HTMLResponse(_page(token), headers={"cache-control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found", 404)
        text = resources.files("benchbot.console").joinpath(f"static/{name}").read_text(encoding="utf-8")
        return Response(text, media_type=STATIC[name], headers={"cache-control": "no-store"})

    async def events(request: Request) -> Response:
        return StreamingResponse(hub.stream(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    async def snapshot(request: Request) -> Response:
        return JSONResponse(state.snapshot(), headers={"cache-control": "no-store"})

    async def image(request: Request) -> Response:
        found = state.images.get(request.path_params["n"])
        cache = {"cache-control": "private, max-age=3600"}
        if isinstance(found, bytes):
            return Response(found, media_type="image/jpeg", headers=cache)
        if found is None or not found.is_file():
            return Response("no such image", 404)
        return FileResponse(found, media_type="image/png", headers=cache)

    async def body(request: Request) -> Any:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise Refused(413, "request too large")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise Refused(400, "the request body is not JSON") from None

    async def answer(request: Request) -> Response:
        try:
            recorded = state.answer(await body(request))
        except Refused as e:
            return JSONResponse({"ok": False, "message": str(e)}, status_code=e.status)
        return JSONResponse({"ok": True, "message": f"recorded: {recorded}"})

    async def seen(request: Request) -> Response:
        try:
            payload = await body(request)
        except Refused as e:
            return JSONResponse({"ok": False, "message": str(e)}, status_code=e.status)
        ms = state.seen(payload.get("key") if isinstance(payload, dict) else None)
        return JSONResponse({"ok": ms is not None, "latency_ms": ms})

    app = Starlette(routes=[
        Route("/", index), Route("/static/{name}", static), Route("/events", events),
        Route("/api/state", snapshot), Route("/img/{n:int}", image),
        Route("/api/answer", answer, methods=["POST"]), Route("/api/seen", seen, methods=["POST"]),
    ])
    return _guard(app, token)


def _guard(app: Any, token: str) -> Any:
    """ASGI wrapper: refuse requests without the token, add security headers to every answer."""
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse

    async def guarded(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await app(scope, receive, send)

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + SECURITY_HEADERS}
            await send(message)

        if scope["path"] == "/favicon.ico":  # browsers ask for it without the token
            return await PlainTextResponse("", 204)(scope, receive, send_with_headers)
        given = Request(scope).query_params.get("token") or Request(scope).headers.get("x-benchbot-token") or ""
        if not secrets.compare_digest(given.encode(), token.encode()):
            msg = ("this page's token is not this console's: it belongs to another or a finished run. "
                   "Open the address the run printed (or `benchbot console`). Nothing was recorded.")
            return await PlainTextResponse(msg, 403, headers={"cache-control": "no-store"})(scope, receive,
                                                                                          send_with_headers)
        await app(scope, receive, send_with_headers)

    return guarded


class ConsoleServer:
    """Serves the console on host:port from a background thread until `stop()`."""

    def __init__(self, state: ConsoleState, hub: Hub, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None) -> None:
        self.state, self.hub, self.host = state, hub, host
        self.token = token or secrets.token_urlsafe(18)
        self.sock = _bind(host, port)
        self.port = self.sock.getsockname()[1]
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/?token={self.token}"

    def start(self) -> ConsoleServer:
        import uvicorn

        config = uvicorn.Config(build_app(self.state, self.hub, self.token), log_level="warning", access_log=False,
                                lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        started = threading.Event()

        async def serve() -> None:
            self.hub.loop = asyncio.get_running_loop()
            started.set()
            await self._server.serve(sockets=[self.sock])

        self._thread = threading.Thread(target=lambda: asyncio.run(serve()), name="console-server", daemon=True)
        self._thread.start()
        started.wait(10.0)
        return self

    def stop(self) -> None:
        self.hub.closed = True
        self.hub.publish(self.hub.latest)  # wake the streams so they end
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.sock.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise BenchbotError(f"cannot serve the console on {host}:{port}: {e.strerror or e}",
                            "pick another --console-port (0 picks a free one) or --console-host") from None
    sock.listen(16)
    sock.setblocking(False)
    return sock
