"""Logging in and out, setting the password from an invitation link, and the language switch."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from caturactl.core.errors import InputError
from caturactl.portal import auth
from caturactl.portal.i18n import LANGUAGES
from caturactl.portal.visit import CSRF_COOKIE, LANGUAGE_COOKIE, SESSION_COOKIE, Visit, endpoint


def safe_next(target: str | None) -> str:
    """``target`` when it is a path of this site, else the order list (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/orders"


def login_page(visit: Visit) -> Response:
    """The login form; a logged-in visitor goes straight to its orders."""
    if visit.user is not None:
        return visit.redirect(safe_next(visit.request.query_params.get("next")))
    return visit.render("login.html", next=safe_next(visit.request.query_params.get("next")), error="", email="")


def login(visit: Visit) -> Response:
    """Checks e-mail and password (slowed down after failures) and starts a session."""
    email, target = visit.field("email"), safe_next(visit.field("next"))
    address = visit.request.client.host if visit.request.client else "unknown"
    try:
        user = auth.login(visit.db, email, visit.form.get("password") or "", address)
    except auth.LoginDelayed as exc:
        response = visit.render("login.html", status=429, next=target, email=email,
                                error=visit.t("login.delayed", seconds=exc.wait_seconds))
        response.headers["Retry-After"] = str(exc.wait_seconds)
        return response
    except auth.LoginRefused:
        return visit.render("login.html", status=401, next=target, email=email, error=visit.t("login.refused"))
    return _logged_in(visit, user, target)


def _logged_in(visit: Visit, user, target: str) -> Response:
    auth.end_session(visit.db, visit.request.cookies.get(SESSION_COOKIE))  # a new session id at login
    token = auth.start_session(visit.db, visit.cfg, user)
    visit.set_cookie(SESSION_COOKIE, token, max_age=visit.cfg.portal.session_hours * 3600)
    visit.set_cookie(CSRF_COOKIE, None)
    return visit.redirect(target)


def logout(visit: Visit) -> Response:
    """Ends the session (in the database, not only the cookie)."""
    auth.end_session(visit.db, visit.request.cookies.get(SESSION_COOKIE))
    visit.set_cookie(SESSION_COOKIE, None)
    return visit.redirect("/login")


def invitation_page(visit: Visit, token: str) -> Response:
    """The form that sets the password of an invited user, or a page saying the link is void."""
    user = auth.invited_user(visit.db, token)
    if user is None:
        return visit.render("error.html", status=404, code=404, message=visit.t("invite.void"))
    return visit.render("invite.html", token=token, email=user.email, error="")


def accept_invitation(visit: Visit, token: str) -> Response:
    """Sets the password (twice the same, long enough), then logs the user in."""
    user = auth.invited_user(visit.db, token)
    if user is None:
        return visit.render("error.html", status=404, code=404, message=visit.t("invite.void"))
    password = visit.form.get("password") or ""
    if password != (visit.form.get("repeat") or ""):
        return visit.render("invite.html", status=422, token=token, email=user.email, error=visit.t("invite.mismatch"))
    try:
        user = auth.accept_invitation(visit.db, token, password)
    except InputError:
        return visit.render("invite.html", status=422, token=token, email=user.email,
                            error=visit.t("invite.weak", length=auth.MIN_PASSWORD))
    return _logged_in(visit, user, "/orders")


def language(visit: Visit, lang: str) -> Response:
    """Remembers the chosen language (a year) and goes back to where the switch was pressed."""
    if lang in LANGUAGES:
        visit.set_cookie(LANGUAGE_COOKIE, lang, max_age=365 * 24 * 3600)
    return visit.redirect(safe_next(visit.request.query_params.get("next")))


ROUTES = [
    Route("/login", endpoint(login_page, login=False), methods=["GET"]),
    Route("/login", endpoint(login, login=False), methods=["POST"]),
    Route("/logout", endpoint(logout, login=False), methods=["POST"]),
    Route("/invite/{token}", endpoint(invitation_page, login=False), methods=["GET"]),
    Route("/invite/{token}", endpoint(accept_invitation, login=False), methods=["POST"]),
    Route("/lang/{lang}", endpoint(language, login=False), methods=["GET"]),
]
