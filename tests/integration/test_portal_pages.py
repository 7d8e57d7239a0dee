"""The partner portal's pages behind the login: lists with paging, answers per line, parcels with
tracking numbers checked inline, availability by form and CSV (all or nothing), documents.

Starlette's TestClient against the real app and database; purchase orders from
tests/portal_data.py (made and sent by the dropship services, not by replaying the pipeline)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from carriers.tracking import make_number
from caturactl.core import clock
from caturactl.fulfilment.dropship import cancellations, rerouting, service
from caturactl.fulfilment.dropship.models import DropshipAvailability, PurchaseOrder
from caturactl.orders.tickets import Ticket
from caturactl.portal.app import build
from tests import factories, portal_data

EMAIL = "anna@ds1.example"


@pytest.fixture
def portal(migrated_database_url):
    factories.fixed_clock()
    app = portal_data.app(migrated_database_url)
    with app.work() as s:
        portal_data.user(s, app.cfg, "DS1", EMAIL)
    yield app
    app.dispose()


def orders(app, count: int, lines=(("TOOL-1", 2), ("LAMP-2", 1))) -> list[str]:
    with app.work() as s:
        return [portal_data.purchase_order(s, app.cfg, "DS1", list(lines)).number for _ in range(count)]


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture
def browser(portal):
    """A logged-in TestClient of DS1 with its CSRF token as ``browser.csrf``."""
    c = TestClient(build(portal), follow_redirects=False, headers={"Accept-Language": "en"})
    c.post("/login", data={"email": EMAIL, "password": portal_data.PASSWORD, "csrf": csrf_of(c.get("/login").text)})
    c.csrf = csrf_of(c.get("/orders").text)
    return c


def htmx(c, path: str, **data):
    """A POST the way htmx sends it: token in the header, a fragment wanted back."""
    return c.post(path, data=data, headers={"HX-Request": "true", "X-CSRF-Token": c.csrf})


def test_the_open_list_pages_by_the_configured_size_newest_first(portal, browser):
    numbers = orders(portal, portal.cfg.portal.page_size + 3)
    first = browser.get("/orders?view=open")
    assert "Page 1 of 2" in first.text and f"Open ({len(numbers)})" in first.text
    listed = re.findall(r'href="/orders/(PO\d+)"', first.text)
    assert len(listed) == portal.cfg.portal.page_size and listed[0] == numbers[-1]
    second = re.findall(r'href="/orders/(PO\d+)"', browser.get("/orders?view=open&page=2").text)
    assert sorted(listed + second) == sorted(numbers)
    assert "Page 2 of 2" in browser.get("/orders?view=open&page=99").text  # past the end: the last page
    assert browser.get("/orders?view=nonsense&page=x").status_code == 200  # the open view, page 1


def test_accepting_all_lines_moves_the_order_to_the_to_ship_view(portal, browser):
    [number] = orders(portal, 1)
    r = htmx(browser, f"/orders/{number}/accept")
    assert r.status_code == 200 and "Accepted." in r.text and "<html" not in r.text
    with portal.session() as s:
        po = service.purchase_order(s, "DS1", number)
    # each accepted line shows the partner its last day to ship (from its lead time and cut-off)
    assert all(ln.ship_by is not None for ln in po.lines) and r.text.count("ship by ") == len(po.lines)
    assert number not in browser.get("/orders?view=open").text
    assert number in browser.get("/orders?view=to_ship").text and "3 piece(s) to ship" in \
        browser.get("/orders?view=to_ship").text


def test_a_rejection_needs_a_known_reason_and_says_so_next_to_the_line(portal, browser):
    [number] = orders(portal, 1)
    r = htmx(browser, f"/orders/{number}/lines/2/reject", reason="because")
    assert r.status_code == 200 and re.search(r'id="line-2".*?class="error"[^>]*>[^<]*unknown reason', r.text, re.S)
    r = htmx(browser, f"/orders/{number}/lines/2/reject", reason="discontinued", note="no longer made")
    assert "Discontinued" in r.text and "Rejected." in r.text
    with portal.session() as s:
        line = service.purchase_order(s, "DS1", number).lines[1]
        assert (line.state, line.reason) == ("rejected", "discontinued")


def test_a_wrong_tracking_number_is_shown_inline_and_stores_nothing(portal, browser):
    [number] = orders(portal, 1)
    htmx(browser, f"/orders/{number}/accept")
    r = htmx(browser, f"/orders/{number}/parcels", carrier="DHL", tracking="00340434161094042558")  # check digit off
    assert r.status_code == 200 and 'id="parcel-error"' in r.text and "should be" in r.text
    with portal.session() as s:
        assert s.scalar(select(PurchaseOrder).where(PurchaseOrder.number == number)).parcels == []


def test_a_parcel_with_some_pieces_leaves_the_rest_to_ship(portal, browser):
    [number] = orders(portal, 1)
    htmx(browser, f"/orders/{number}/accept")
    first = make_number("DHL", 501)
    r = htmx(browser, f"/orders/{number}/parcels", carrier="DHL", tracking=first, **{"qty-1": "1"})
    assert "Parcel saved." in r.text and first in r.text and "1 shipped" in r.text
    rest = make_number("DHL", 502)
    r = browser.post(f"/orders/{number}/parcels", data={"csrf": browser.csrf, "carrier": "DHL", "tracking": rest})
    assert r.status_code == 303  # without htmx: back to the page
    with portal.session() as s:
        detail = service.purchase_order(s, "DS1", number)
        assert detail.state == "closed" and [p.tracking for p in detail.parcels] == [first, rest]
        assert [p.lines for p in detail.parcels] == [((1, 1),), ((1, 1), (2, 1))]


def test_a_form_error_without_htmx_shows_the_page_with_the_error(portal, browser):
    [number] = orders(portal, 1)
    r = browser.post(f"/orders/{number}/parcels", data={"csrf": browser.csrf, "carrier": "DHL", "tracking": "1",
                                                        "qty-1": "many"})
    assert r.status_code == 422 and "not a whole number" in r.text and "<html" in r.text
    browser.post(f"/orders/{number}/accept", data={"csrf": browser.csrf})
    r = browser.post(f"/orders/{number}/parcels", data={"csrf": browser.csrf, "carrier": "DHL", "tracking": "1"})
    assert r.status_code == 422 and r.text.count('id="parcel-error"') == 1 and 'aria-invalid="true"' in r.text


def test_availability_from_the_form_is_stored_as_of_now(portal, browser):
    r = browser.post("/availability", data={"csrf": browser.csrf, "new-sku-0": "TOOL-1", "new-qty-0": "12",
                                            "new-sku-1": "LAMP-2", "new-qty-1": "0"})
    assert r.status_code == 200 and "2 figures reported." in r.text
    r = browser.post("/availability", data={"csrf": browser.csrf, "qty:TOOL-1": "-4"})
    assert r.status_code == 422 and "not a quantity" in r.text
    with portal.session() as s:
        rows = s.scalars(select(DropshipAvailability).order_by(DropshipAvailability.sku)).all()
        assert [(a.partner, a.sku, a.quantity, a.source) for a in rows] == [
            ("DS1", "LAMP-2", 0, f"portal:{EMAIL}"), ("DS1", "TOOL-1", 12, f"portal:{EMAIL}")]


def test_a_csv_with_one_bad_line_changes_nothing_and_names_the_line(portal, browser):
    bad = b"sku;quantity\nTOOL-1;5\nLAMP-2;lots\n"
    r = browser.post("/availability/upload", data={"csrf": browser.csrf},
                     files={"file": ("stock.csv", bad, "text/csv")})
    assert r.status_code == 422 and "lots" in r.text
    with portal.session() as s:
        assert s.scalars(select(DropshipAvailability)).all() == []
    good = browser.post("/availability/upload", data={"csrf": browser.csrf},
                        files={"file": ("stock.csv", b"sku;quantity\nTOOL-1;5\n", "text/csv")})
    assert good.status_code == 200 and "stock.csv taken over." in good.text and 'value="5"' in good.text


def test_the_delivery_note_downloads_and_an_unknown_document_is_not_found(portal, browser):
    [number] = orders(portal, 1)
    page = browser.get(f"/orders/{number}")
    assert f'href="/orders/{number}/documents/delivery_note"' in page.text
    r = browser.get(f"/orders/{number}/documents/delivery_note")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert r.headers["content-type"] == "application/pdf" and "attachment" in r.headers["content-disposition"]
    assert browser.get(f"/orders/{number}/documents/passport").status_code == 404
    assert browser.get(f"/orders/{number}/documents/../../etc/passwd").status_code == 404


def test_a_return_is_confirmed_with_its_condition_and_leaves_the_open_list(portal, browser):
    with portal.work() as s:
        rt = portal_data.returned(s, portal.cfg, "DS1", reason="too small")
        theirs = portal_data.returned(s, portal.cfg, "DS2", serial=901)
        mine, other = (rt.id, rt.number), (theirs.id, theirs.number)
    page = browser.get("/returns")
    assert mine[1] in page.text and "too small" in page.text and other[1] not in page.text
    r = browser.post(f"/returns/{mine[0]}/confirm", data={"csrf": browser.csrf, "condition": "wet"})
    assert r.status_code == 422 and "unknown condition" in r.text
    r = browser.post(f"/returns/{mine[0]}/confirm", data={"csrf": browser.csrf, "condition": "opened",
                                                          "note": "box torn"})
    assert r.status_code == 200 and "Receipt confirmed." in r.text and "box torn" in r.text
    assert f'id="return-{mine[0]}"' not in r.text  # no longer open: listed as received
    assert browser.post(f"/returns/{other[0]}/confirm",
                        data={"csrf": browser.csrf, "condition": "as_new"}).status_code == 404
    with portal.session() as s:
        [done] = service.returns(s, "DS1", view="received")
        [still] = service.returns(s, "DS2", view="open")
        assert (done.condition, done.note, still.number) == ("opened", "box torn", other[1])


def _cancellation_requested(app) -> str:
    with app.work() as s:
        po = portal_data.purchase_order(s, app.cfg, "DS1", ["TOOL-1"])
        assert cancellations.request_for_order(s, po.order, "cancelled by the buyer", clock.now()) == 1
        return po.number


def test_a_cancellation_request_is_answered_on_the_order_page_cancelled_or_refused(portal, browser):
    cancel, refuse = _cancellation_requested(portal), _cancellation_requested(portal)
    page = browser.get(f"/orders/{cancel}").text
    assert "Cancellation requested" in page and "cancelled by the buyer" in page
    r = htmx(browser, f"/orders/{cancel}/cancellation", note="")
    assert "Please cancel or refuse." in r.text  # neither button: nothing answered
    r = htmx(browser, f"/orders/{cancel}/cancellation", answer="accept")
    assert r.status_code == 200 and "Cancelled." in r.text and "Cancellation requested" not in r.text
    r = htmx(browser, f"/orders/{refuse}/cancellation", answer="refuse", note="left this morning")
    assert "Refusal sent." in r.text
    with portal.session() as s:
        states = {po.number: po.state for po in s.scalars(select(PurchaseOrder))}
        answered = {c.purchase_order: (c.state, c.answer) for c in cancellations.pending(s, "DS1", answered=True)}
        tickets = [t.text for t in s.scalars(select(Ticket).where(Ticket.kind == rerouting.TICKET_KIND))]
    assert states[cancel] == "cancelled" and states[refuse] != "cancelled"
    assert answered == {cancel: ("accepted", ""), refuse: ("refused", "left this morning")}
    assert any(refuse in t and "refused to cancel" in t for t in tickets)
    # answered once: the form is gone, and answering again is refused with the reason
    assert "Cancellation requested" not in browser.get(f"/orders/{refuse}").text
    r = htmx(browser, f"/orders/{refuse}/cancellation", answer="accept")
    assert "no cancellation" in r.text and states[refuse] != "cancelled"


def test_a_return_offers_its_label_to_its_partner_only(portal, browser):
    with portal.work() as s:
        mine = portal_data.returned(s, portal.cfg, "DS1", serial=901)
        theirs = portal_data.returned(s, portal.cfg, "DS2", serial=902)
        mine_id, theirs_id = mine.id, theirs.id
    assert f'href="/returns/{mine_id}/label"' in browser.get("/returns").text
    r = browser.get(f"/returns/{mine_id}/label")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF") and f"{mine.number}-return-label.pdf" in r.headers["content-disposition"]
    assert browser.get(f"/returns/{theirs_id}/label").status_code == 404  # another partner's: no such page


def test_a_return_label_that_cannot_be_made_says_to_ask_the_merchant(portal, browser):
    with portal.work() as s:
        rt_id = portal_data.returned(s, portal.cfg, "DS1", serial=903).id
    ds1 = portal.cfg.locations["DS1"]
    portal.cfg.locations["DS1"] = ds1.model_copy(update={"street": ""})  # no address to send returns to
    try:
        r = browser.get(f"/returns/{rt_id}/label")
    finally:
        portal.cfg.locations["DS1"] = ds1
    assert r.status_code == 409 and "Please ask the merchant" in r.text
