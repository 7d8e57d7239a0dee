"""The partner portal's doors: login with argon2 passwords, the slowed-down login, invitations,
sessions and their cookies, CSRF, and what one partner can see of another (nothing: 404).

Starlette's TestClient drives the real ASGI app over the test database; the app's clock is fixed
and moved by the tests, so the throttle's waits pass without sleeping."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
import tomllib
from datetime import timedelta
from importlib import resources

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from caturactl.core import clock
from caturactl.core.events import Event
from caturactl.fulfilment.dropship import service
from caturactl.portal import auth
from caturactl.portal.app import build
from caturactl.portal.i18n import negotiate
from caturactl.portal.models import LoginThrottle, PartnerUser, PortalSession
from tests import factories, portal_data
from tests.fulfilment import carrier_section
from tests.portal_data import PASSWORD

ANNA, BEN = "anna@ds1.example", "ben@ds2.example"


@pytest.fixture
def portal(migrated_database_url):
    """The portal's App with DS1 (user Anna, one purchase order) and DS2 (user Ben, one)."""
    factories.fixed_clock()
    app = portal_data.app(migrated_database_url)
    with app.work() as s:
        portal_data.user(s, app.cfg, "DS1", ANNA)
        portal_data.user(s, app.cfg, "DS2", BEN)
        po1 = portal_data.purchase_order(s, app.cfg, "DS1", ["TOOL-1", ("LAMP-2", 2)])
        po2 = portal_data.purchase_order(s, app.cfg, "DS2", ["TOOL-1"], buyer_email="secret.buyer@example.org",
                                         ship_phone="+49 170 1234567")
        app.numbers = (po1.number, po2.number)
    yield app
    app.dispose()


def client(app, **kw) -> TestClient:
    return TestClient(build(app), follow_redirects=False, **kw)


def csrf_of(response) -> str:
    """The CSRF token a page carries in its forms."""
    m = re.search(r'name="csrf" value="([^"]+)"', response.text)
    assert m, "the page has no form with a CSRF token"
    return m.group(1)


def main_of(response) -> str:
    """The page's <main> (the rest holds links back to the page's own path)."""
    return response.text[response.text.index("<main>"):response.text.index("</main>")]


def log_in(c: TestClient, email: str = ANNA, password: str = PASSWORD):
    page = c.get("/login")
    return c.post("/login", data={"email": email, "password": password, "csrf": csrf_of(page), "next": "/orders"})


# --- login, cookies, sessions -------------------------------------------------------------------


def test_the_right_password_opens_a_session_with_an_httponly_samesite_cookie(portal):
    c = client(portal)
    r = log_in(c)
    assert r.status_code == 303 and r.headers["location"] == "/orders"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("portal_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie  # plain http here
    page = c.get("/orders")
    assert page.status_code == 200 and portal.numbers[0] in page.text
    with portal.session() as s:
        stored = s.scalars(select(PortalSession)).all()
        token = c.cookies.get("portal_session")
        assert [x.id for x in stored] == [auth.token_hash(token)]  # the database has only the hash


def test_pages_without_a_session_send_the_visitor_to_the_login(portal):
    r = client(portal).get(f"/orders/{portal.numbers[0]}")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2Forders%2FPO")


def test_the_cookie_is_secure_when_a_trusted_proxy_says_the_request_came_over_https(portal):
    behind_proxy = ProxyHeadersMiddleware(build(portal), trusted_hosts="*")
    c = TestClient(behind_proxy, follow_redirects=False, headers={"X-Forwarded-Proto": "https"})
    page = c.get("/login")
    assert "Secure" in page.headers["set-cookie"]
    # httpx keeps Secure cookies for https URLs; the client talks plain http to the "proxy's" backend
    r = c.post("/login", data={"email": ANNA, "password": PASSWORD, "csrf": csrf_of(page)},
               headers={"Cookie": f"portal_csrf={csrf_of(page)}"})
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("portal_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie
    plain = client(portal).get("/login")  # the same app without the header: plain http, no Secure
    assert "Secure" not in plain.headers["set-cookie"]


def test_secure_cookies_always_marks_them_secure_even_over_plain_http(migrated_database_url):
    factories.fixed_clock()
    app = portal_data.app(migrated_database_url, portal='secure_cookies = "always"')
    r = client(app).get("/login")
    assert "Secure" in r.headers["set-cookie"]
    app.dispose()


def test_logout_ends_the_session_in_the_database_not_only_in_the_browser(portal):
    c = client(portal)
    log_in(c)
    token = c.cookies.get("portal_session")
    orders = c.get("/orders")
    assert c.post("/logout", data={"csrf": csrf_of(orders)}).status_code == 303
    replay = client(portal)
    replay.cookies.set("portal_session", token)
    assert replay.get("/orders").status_code == 303  # the old cookie logs nobody in
    with portal.session() as s:
        assert s.scalars(select(PortalSession)).all() == []


def test_a_session_ends_after_the_configured_hours_on_the_app_clock(portal):
    c = client(portal)
    log_in(c)
    assert c.get("/orders").status_code == 200
    clock.current().advance(timedelta(hours=portal.cfg.portal.session_hours, seconds=1))
    assert c.get("/orders").status_code == 303


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(portal):
    c = client(portal)
    wrong = log_in(c, ANNA, "not the password at all")
    unknown = log_in(c, "nobody@ds1.example", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "E-Mail oder Passwort ist falsch." in wrong.text and "E-Mail oder Passwort ist falsch." in unknown.text
    assert "portal_session" not in c.cookies


# --- the slowed-down login ------------------------------------------------------------------------


def test_after_three_failures_the_user_waits_even_with_the_right_password(portal):
    c = client(portal)
    for _ in range(auth.USER_RULE.free):
        assert log_in(c, ANNA, "guess " * 3).status_code == 401
    delayed = log_in(c, ANNA, PASSWORD)
    assert delayed.status_code == 429 and delayed.headers["retry-after"] == "5"
    with portal.session() as s:
        assert s.get(LoginThrottle, "user:" + ANNA).failures == 3  # stored, not kept in memory
    clock.current().advance(timedelta(seconds=5))
    assert log_in(c, ANNA, PASSWORD).status_code == 303
    with portal.session() as s:
        assert s.get(LoginThrottle, "user:" + ANNA) is None  # a success forgets the user's failures


def test_each_further_failure_doubles_the_wait(portal):
    c = client(portal)
    for _ in range(auth.USER_RULE.free):
        log_in(c, ANNA, "wrong password!")
    waits = []
    for _ in range(3):
        r = log_in(c, ANNA, PASSWORD)  # refused while waiting, the password not even checked
        assert r.status_code == 429
        waits.append(int(r.headers["retry-after"]))
        clock.current().advance(timedelta(seconds=waits[-1]))
        assert log_in(c, ANNA, "wrong password!").status_code == 401
    assert waits == [5, 10, 20]
    assert auth.wait_for(auth.USER_RULE, 40) == auth.MAX_WAIT


def test_many_failures_from_one_address_slow_down_every_user_from_it(portal):
    c = client(portal)
    for i in range(auth.ADDRESS_RULE.free):
        assert log_in(c, f"guess{i}@ds1.example", "wrong password!").status_code == 401
    r = log_in(c, BEN, PASSWORD)  # Ben never failed, but the address did
    assert r.status_code == 429 and "Zu viele Fehlversuche" in r.text


def test_parallel_guesses_are_each_counted_before_the_next_is_checked(portal):
    def guess(_):
        with httpx.Client(base_url=url, timeout=30) as c:
            token = csrf_of(c.get("/login"))
            return c.post("/login", data={"email": ANNA, "password": "parallel guess", "csrf": token}).status_code

    with portal_data.served(portal) as url, ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(guess, range(8)))
    assert codes == [401] * auth.USER_RULE.free + [429] * (8 - auth.USER_RULE.free)
    with portal.session() as s:
        assert s.get(LoginThrottle, "user:" + ANNA).failures == auth.USER_RULE.free


# --- invitations ------------------------------------------------------------------------------------


def test_an_invitation_link_sets_the_password_once_and_logs_in(portal):
    with portal.work() as s:
        token = auth.invite(s, portal.cfg, "DS1", "Carla@DS1.example")
    url = auth.invitation_url(portal.cfg, token)
    assert url == f"http://portal.test/invite/{token}"
    c = client(portal)
    page = c.get(f"/invite/{token}")
    assert page.status_code == 200 and "carla@ds1.example" in page.text
    short = c.post(f"/invite/{token}", data={"csrf": csrf_of(page), "password": "short", "repeat": "short"})
    assert short.status_code == 422
    r = c.post(f"/invite/{token}", data={"csrf": csrf_of(page), "password": "a long new password",
                                         "repeat": "a long new password"})
    assert r.status_code == 303 and c.get("/orders").status_code == 200
    assert client(portal).get(f"/invite/{token}").status_code == 404  # used up
    with portal.session() as s:
        carla = s.scalar(select(PartnerUser).where(PartnerUser.email == "carla@ds1.example"))
        assert carla.password_hash.startswith("$argon2id$") and carla.invite_hash is None


def test_an_invitation_expires_after_the_configured_hours(portal):
    with portal.work() as s:
        token = auth.invite(s, portal.cfg, "DS2", "dora@ds2.example")
    clock.current().advance(timedelta(hours=portal.cfg.portal.invitation_hours, seconds=1))
    assert client(portal).get(f"/invite/{token}").status_code == 404


def test_inviting_needs_a_configured_dropshipper(portal):
    with portal.work() as s, pytest.raises(Exception, match="no dropshipper 'WH'"):
        auth.invite(s, portal.cfg, "WH", "x@example.org")


def test_portal_invite_prints_a_link_that_works(bare_workspace):
    factories.fixed_clock()
    bare_workspace.write_config(extra=carrier_section() + portal_data.dropshippers()
                                + '\n[portal]\npublic_url = "https://partner.example.com"\n')
    out = bare_workspace.ok("portal", "invite", "DS1", "eva@ds1.example")
    m = re.fullmatch(r"https://partner\.example\.com/invite/([\w-]+)\s*", out)
    assert m, out
    app = bare_workspace.app()
    with app.session() as s:
        assert auth.invited_user(s, m.group(1)).email == "eva@ds1.example"
    app.dispose()


# --- CSRF ----------------------------------------------------------------------------------------------


def _post_routes(app) -> list[str]:
    paths = []
    for route in build(app).routes:
        if "POST" in (getattr(route, "methods", None) or ()):
            paths.append(route.path.replace("{number}", app.numbers[0]).replace("{line_no:int}", "1")
                         .replace("{token}", "x" * 20).replace("{return_id:int}", "1"))
    return paths


def test_every_post_without_the_csrf_token_is_refused_with_403_and_changes_nothing(portal):
    c = client(portal)
    log_in(c)
    paths = _post_routes(portal)
    assert {"/login", "/logout", f"/orders/{portal.numbers[0]}/accept", "/availability/upload"} <= set(paths)
    for path in paths:
        r = c.post(path, data={"line": "1", "reason": "other", "carrier": "DHL", "tracking": "x"})
        assert r.status_code == 403, path
        wrong = c.post(path, data={"csrf": "forged"}, headers={"X-CSRF-Token": "forged too"})
        assert wrong.status_code == 403, path
    assert c.get("/orders").status_code == 200  # still logged in: /logout without the token did nothing
    with portal.session() as s:
        assert not s.scalars(select(Event).where(Event.actor == f"portal:{ANNA}")).all()


def test_the_csrf_token_may_come_as_htmx_header(portal):
    c = client(portal)
    log_in(c)
    token = csrf_of(c.get(f"/orders/{portal.numbers[0]}"))
    r = c.post(f"/orders/{portal.numbers[0]}/accept", data={"line": "1"},
               headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert r.status_code == 200 and 'id="order"' in r.text and "<html" not in r.text


def test_a_login_form_from_another_browser_is_refused(portal):
    mine, theirs = client(portal), client(portal)
    token = csrf_of(theirs.get("/login"))
    mine.get("/login")
    r = mine.post("/login", data={"email": ANNA, "password": PASSWORD, "csrf": token})
    assert r.status_code == 403


# --- one partner, its own orders -------------------------------------------------------------------


def test_another_partners_purchase_order_is_404_like_one_that_does_not_exist(portal):
    mine, theirs = portal.numbers
    c = client(portal)
    log_in(c)
    token = csrf_of(c.get("/orders"))
    missing = c.get("/orders/PO999999")
    for r in (c.get(f"/orders/{theirs}"), c.get(f"/orders/{theirs}/documents/delivery_note"),
              c.post(f"/orders/{theirs}/accept", data={"csrf": token}),
              c.post(f"/orders/{theirs}/lines/1/reject", data={"csrf": token, "reason": "other"}),
              c.post(f"/orders/{theirs}/parcels", data={"csrf": token, "carrier": "DHL",
                                                        "tracking": "00340434161094042557"})):
        assert r.status_code == 404 and main_of(r) == main_of(missing)
    assert theirs not in c.get("/orders?view=open").text and mine in c.get("/orders?view=open").text
    with portal.session() as s:
        assert {ln.state for ln in service.purchase_order(s, "DS2", theirs).lines} == {"open"}


def test_the_order_page_shows_the_address_but_no_buyer_email_or_phone(portal):
    c = client(portal, headers={"Accept-Language": "en"})
    log_in(c, BEN)
    page = c.get(f"/orders/{portal.numbers[1]}")
    assert page.status_code == 200 and "Ship to" in page.text and "Hauptstr. 5" in page.text
    assert "secret.buyer@example.org" not in page.text and "1234567" not in page.text
    assert "24,99" not in page.text and "24.99" not in page.text  # not what the buyer paid


def test_an_action_is_an_event_with_the_portal_user_as_actor(portal):
    c = client(portal)
    log_in(c)
    token = csrf_of(c.get(f"/orders/{portal.numbers[0]}"))
    r = c.post(f"/orders/{portal.numbers[0]}/lines/2/reject", data={"csrf": token, "reason": "out_of_stock"})
    assert r.status_code == 303
    with portal.session() as s:
        events = s.scalars(select(Event).where(Event.actor == f"portal:{ANNA}")).all()
        assert any("rejected" in e.why and "out_of_stock" in e.why for e in events)


# --- languages ---------------------------------------------------------------------------------------


def test_both_languages_have_every_message():
    text = resources.files("templates.portal").joinpath("messages.toml").read_text(encoding="utf-8")
    catalog = tomllib.loads(text)
    assert set(catalog) == {"de", "en"} and set(catalog["de"]) == set(catalog["en"])


def test_the_language_follows_the_switch_then_the_browser_then_german():
    assert negotiate(None, "en-GB,en;q=0.9,de;q=0.8") == "en"
    assert negotiate(None, "fr-FR, de;q=0.5, en;q=0.4") == "de"
    assert negotiate("en", "de-DE") == "en"
    assert negotiate(None, "fr, es;q=0.8") == "de"
    assert negotiate(None, "en;q=0, de;q=0.1") == "de"


def test_the_switch_remembers_the_language(portal):
    c = client(portal, headers={"Accept-Language": "de"})
    assert "Anmelden" in c.get("/login").text
    r = c.get("/lang/en?next=/login")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert "Log in" in c.get("/login").text
    assert client(portal).get("/lang/en?next=https://evil.example").headers["location"] == "/orders"
