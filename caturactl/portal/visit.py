"""One request to the portal: who sends it, its form, its language and its transaction.

Every route is made with :func:`endpoint`, the one place that
- opens a database session for the request and commits it after a POST that went through (the
  route owns the transaction; a refused step inside it was rolled back to its savepoint),
- finds the logged-in partner user from the session cookie (a page that needs one sends the
  visitor to the login page),
- refuses a POST whose CSRF token (form field ``csrf`` or header ``X-CSRF-Token``) is missing or
  not the session's (403); before login the token is the one in the ``portal_csrf`` cookie,
- turns NotFound (a purchase order or return that is not this partner's) into 404, never 403,
- records the user as the actor of every event the services write.

The views are plain functions ``view(visit, **path_params) -> Response`` and run in a worker
thread (the database calls block).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable
from urllib.parse import quote

from babel.numbers import format_currency
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from caturactl.app import App
from caturactl.core.errors import CaturactlError, NotFoundError
from caturactl.core.events import actor
from caturactl.portal import auth
from caturactl.portal.i18n import LANGUAGES, negotiate, translator
from caturactl.portal.models import PartnerUser, PortalSession

SESSION_COOKIE = "portal_session"
CSRF_COOKIE = "portal_csrf"
LANGUAGE_COOKIE = "portal_lang"
MAX_UPLOAD = 5 * 1024 * 1024  # an availability CSV of 100,000 SKUs is about 2 MB


@dataclass(frozen=True)
class Upload:
    """A file from a form, read into memory (at most ``MAX_UPLOAD`` bytes)."""
    filename: str
    data: bytes


def templates() -> Environment:
    """The Jinja environment of ``templates/portal/`` (HTML escaped everywhere)."""
    return Environment(loader=PackageLoader("templates", "portal"), undefined=StrictUndefined,
                       autoescape=select_autoescape(["html"], default=True), trim_blocks=True, lstrip_blocks=True)


@dataclass
class Portal:
    """What every request shares: the composition root and the templates."""
    app: App
    env: Environment = field(default_factory=templates)

    @property
    def cfg(self):
        return self.app.cfg


@dataclass
class Visit:
    request: Request
    portal: Portal
    db: Session
    form: dict[str, Any]
    lang: str
    csrf: str
    login: PortalSession | None
    # (name, value or None to delete it, max_age) to set on the response
    cookies: list[tuple[str, str | None, int | None]] = field(default_factory=list)

    @property
    def user(self) -> PartnerUser | None:
        return self.login.user if self.login else None

    @property
    def partner(self) -> str:
        """The partner (location code) the logged-in user works for."""
        return self.user.partner

    @property
    def actor(self) -> str:
        """Who acts, for the event log: ``portal:EMAIL``, or ``portal`` before login."""
        return f"portal:{self.user.email}" if self.user else "portal"

    @property
    def htmx(self) -> bool:
        """True when htmx sent the request and wants a fragment, not a page."""
        return self.request.headers.get("HX-Request") == "true"

    @property
    def cfg(self):
        return self.portal.cfg

    def t(self, key: str, **values) -> str:
        """The message ``key`` in the visitor's language."""
        return translator(self.lang)(key, **values)

    def field(self, name: str, default: str = "") -> str:
        """A text field of the form, stripped; ``default`` when missing or a file."""
        value = self.form.get(name, default)
        return value.strip() if isinstance(value, str) else default

    def render(self, template: str, status: int = 200, **values) -> HTMLResponse:
        """``template`` rendered with the visit's user, language and CSRF token. ``here`` is the
        page's own address (the language switch comes back to it); a page answering a POST names
        the page it shows, since the POST's address has no page."""
        page = self.portal.env.get_template(template)
        get = self.request.method == "GET"
        here = values.pop("here", None) or (self.request.url.path if get else "/orders")
        html = page.render(t=self.t, lang=self.lang, languages=LANGUAGES, csrf=self.csrf, user=self.user,
                           company=self.cfg.company.name, path=here, query=self.request.url.query if get else "",
                           quote=quote, when=self.when, day=self.day, money=self.money, **values)
        return HTMLResponse(html, status_code=status)

    def when(self, at: datetime | None) -> str:
        """``at`` in the business time zone, the way the visitor's language writes it."""
        if at is None:
            return ""
        return at.astimezone(self.cfg.tz).strftime("%d.%m.%Y %H:%M" if self.lang == "de" else "%Y-%m-%d %H:%M")

    def day(self, on: date | None) -> str:
        """A date the way the visitor's language writes it."""
        return "" if on is None else on.strftime("%d.%m.%Y" if self.lang == "de" else "%Y-%m-%d")

    def money(self, amount: Decimal | None, currency: str = "EUR") -> str:
        """``amount`` as the visitor's language writes money ("12,50 €", "€12.50")."""
        return "" if amount is None else format_currency(amount, currency, locale=self.lang)

    def attempt(self, action: Callable[..., Any], *args, **kwargs) -> str | None:
        """Runs one service call in a savepoint: None when it went through, else the error's
        message (and nothing of it stays). NotFound passes through (it becomes 404)."""
        try:
            with self.db.begin_nested():
                action(*args, **kwargs)
        except NotFoundError:  # the contract's NotFound too
            raise
        except CaturactlError as exc:
            return exc.message  # the page says where; the event log and the CLI keep `where`
        return None

    def redirect(self, url: str) -> Response:
        """To ``url`` after a POST (303), or htmx's HX-Redirect for a fragment request."""
        if self.htmx:
            return Response(status_code=200, headers={"HX-Redirect": url})
        return RedirectResponse(url, status_code=303)

    def set_cookie(self, name: str, value: str | None, max_age: int | None = None) -> None:
        """Sets (or with None deletes) a cookie on the response: HttpOnly, SameSite=Lax, Secure as configured."""
        self.cookies.append((name, value, max_age))

    def secure(self) -> bool:
        """Whether cookies get the Secure flag: [portal] secure_cookies, "auto" following the
        request's scheme (uvicorn sets it from a trusted proxy's X-Forwarded-Proto)."""
        mode = self.cfg.portal.secure_cookies
        return mode == "always" or (mode == "auto" and self.request.url.scheme == "https")


def endpoint(view: Callable[..., Response], *, login: bool = True) -> Callable:
    """The ASGI endpoint of ``view`` (see the module's docstring for what it adds)."""

    async def handle(request: Request) -> Response:
        form = await _read_form(request) if request.method == "POST" else {}
        return await run_in_threadpool(_run, request, form, view, login)

    handle.__name__ = view.__name__
    handle.__doc__ = view.__doc__
    return handle


async def _read_form(request: Request) -> dict[str, Any]:
    form: dict[str, Any] = {}
    async with request.form(max_files=2, max_fields=2000, max_part_size=MAX_UPLOAD) as data:
        for key, value in data.multi_items():
            if isinstance(value, UploadFile):
                form[key] = Upload(value.filename or "", await value.read(MAX_UPLOAD + 1))
            else:
                form[key] = value
    return form


def _run(request: Request, form: dict[str, Any], view: Callable[..., Response], login: bool) -> Response:
    portal: Portal = request.app.state.portal
    with portal.app.session() as db:
        current = auth.session_for(db, request.cookies.get(SESSION_COOKIE))
        lang = negotiate(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))
        csrf = current.csrf_token if current else request.cookies.get(CSRF_COOKIE) or ""
        visit = Visit(request, portal, db, form, lang, csrf, current)
        if not csrf:
            visit.csrf = secrets.token_urlsafe(32)
            visit.set_cookie(CSRF_COOKIE, visit.csrf)
        if request.method == "POST" and not _csrf_ok(request, form, csrf):
            return _finish(visit, visit.render("error.html", status=403, code=403, message=visit.t("error.csrf")))
        if login and current is None:
            if request.method == "POST":
                return _finish(visit, visit.render("error.html", status=403, code=403, message=visit.t("error.login")))
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return _finish(visit, visit.redirect(f"/login?next={quote(target, safe='')}"))
        token = actor.set(visit.actor)
        try:
            response = view(visit, **request.path_params)
        except NotFoundError:  # the contract's NotFound too
            db.rollback()
            response = visit.render("error.html", status=404, code=404, message=visit.t("error.not_found"))
        finally:
            actor.reset(token)
        if request.method == "POST" and response.status_code < 500:
            db.commit()
        return _finish(visit, response)


def _csrf_ok(request: Request, form: dict[str, Any], expected: str) -> bool:
    sent = form.get("csrf") or request.headers.get("X-CSRF-Token") or ""
    return bool(expected) and isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected.encode())


def _finish(visit: Visit, response: Response) -> Response:
    secure = visit.secure()
    for name, value, max_age in visit.cookies:
        if value is None:
            response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
        else:
            response.set_cookie(name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="lax")
    response.headers.setdefault("Cache-Control", "no-store")
    return response

