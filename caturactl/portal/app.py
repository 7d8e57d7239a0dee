"""The portal's ASGI application (Starlette) and how ``caturactl portal serve`` runs it (uvicorn).

Static files (htmx, the style sheet) are served from ``templates/portal/static/``; htmx is
vendored there, no JavaScript build step (its version and source: ``templates/portal/README.md``).
"""

from __future__ import annotations

from urllib.parse import quote

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from caturactl.app import App
from caturactl.portal.i18n import negotiate, translator
from caturactl.portal.routes import account, availability, orders, returns
from caturactl.portal.visit import LANGUAGE_COOKIE, Portal

# Only our own scripts, styles and forms; no framing (clickjacking), no referrer to other sites.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                 b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every HTTP response (pages, fragments, files, errors)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _home(request: Request) -> Response:
    return RedirectResponse("/orders", status_code=303)


async def _not_found(request: Request, exc) -> Response:
    """A plain page for any path or method the portal does not have (same text as another
    partner's purchase order: nothing tells the two apart)."""
    lang = negotiate(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))
    t = translator(lang)
    status = getattr(exc, "status_code", 404)
    portal = request.app.state.portal
    # No session is looked up for a path that does not exist: the page has no user, no forms.
    return HTMLResponse(portal.env.get_template("error.html").render(
        t=t, code=status, message=t("error.not_found"), user=None, csrf="", path="/orders", query="", lang=lang,
        languages=(), company=portal.cfg.company.name, quote=quote), status_code=status)


def build(app: App) -> Starlette:
    """The portal over ``app``'s database and configuration."""
    routes = [Route("/", _home), *account.ROUTES, *orders.ROUTES, *availability.ROUTES, *returns.ROUTES,
              Mount("/static", StaticFiles(packages=[("templates.portal", "static")]), name="static")]
    web = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)],
                    exception_handlers={404: _not_found, 405: _not_found})
    web.state.portal = Portal(app)
    return web


def serve(app: App, host: str | None = None, port: int | None = None) -> None:
    """Runs the portal under uvicorn until interrupted. X-Forwarded-Proto/-For are believed from
    ``[portal] trusted_proxies`` only."""
    cfg = app.cfg.portal
    uvicorn.run(build(app), host=host or cfg.host, port=port or cfg.port, proxy_headers=True,
                forwarded_allow_ips=",".join(cfg.trusted_proxies), server_header=False, log_level="info")
