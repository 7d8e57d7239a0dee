"""The partner portal in a real browser: Debian's chromium driven by Playwright for Python against
the portal under a real uvicorn on a loopback port. A partner logs in, accepts a line, rejects
one, enters a wrong then a right tracking number (the error shown inline by htmx), downloads the
delivery note, uploads its availability, confirms a return and logs out. Each page is saved as
a screenshot (desktop and phone width) in the test's folder, or in docs/portal/ with
``make screenshots`` (PORTAL_SCREENSHOTS names the folder), so a test run leaves the tree as it was.

Nothing is downloaded at run time: the browser is the system's /usr/bin/chromium (CI installs it
with apt, .ci/run); without it the test is skipped here and fails under CI."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import select

from carriers.tracking import make_number
from caturactl.core import clock
from caturactl.fulfilment.dropship import cancellations, service
from caturactl.fulfilment.dropship.models import DropshipAvailability, PurchaseOrder
from tests import factories, portal_data
from tests.conftest import IN_CI

CHROMIUM = Path("/usr/bin/chromium")
EMAIL = "anna@ds1.example"
DESKTOP, PHONE = {"width": 1280, "height": 860}, {"width": 390, "height": 844}

pytestmark = pytest.mark.slow


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail("chromium is not installed: CI must run the browser tests (.ci/run installs it)")
        pytest.skip("chromium is not installed here (apt-get install chromium; CI has it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture
def served(migrated_database_url):
    """The portal under uvicorn on a free loopback port, with DS1's user and two purchase orders."""
    factories.fixed_clock()
    app = portal_data.app(migrated_database_url)
    with app.work() as s:
        portal_data.user(s, app.cfg, "DS1", EMAIL)
        older = portal_data.purchase_order(s, app.cfg, "DS1", [("LAMP-2", 1)], buyer="Bernd Muster")
        po = portal_data.purchase_order(s, app.cfg, "DS1", [("TOOL-1", 2), ("CHAIR-3", 1)], buyer="Anna Beispiel")
        portal_data.purchase_order(s, app.cfg, "DS2", ["TOOL-1"])  # another partner's
        app.returned = portal_data.returned(s, app.cfg, "DS1", [("LAMP-2", 1)], reason="zu groß").number
        asked = portal_data.purchase_order(s, app.cfg, "DS1", [("CHAIR-3", 1)], buyer="Carla Beispiel")
        cancellations.request_for_order(s, asked.order, "the buyer cancelled the order", clock.now())
        app.cancel_asked = asked.number
        app.numbers = (po.number, older.number)
    with portal_data.served(app) as url:
        app.url = url
        yield app
    app.dispose()


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where the screenshots go: PORTAL_SCREENSHOTS (``make screenshots``: docs/portal), else the
    test's own folder."""
    folder = Path(os.environ.get("PORTAL_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page, folder: Path, name: str) -> None:
    """FOLDER/NAME.png at the page's width, and NAME-phone.png at a phone's."""
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(folder / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(size)


def test_a_partner_answers_ships_and_reports_availability_in_a_browser(browser, served, shots, tmp_path):
    number, older = served.numbers
    context = browser.new_context(viewport=DESKTOP, locale="de-DE")
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(served.url + "/orders")
    assert page.url.startswith(served.url + "/login")
    shoot(page, shots, "login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", portal_data.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(served.url + "/orders")
    assert page.locator("#orders li").count() == 3  # DS1's three, not DS2's
    shoot(page, shots, "orders")

    page.click(f"text={number}")
    page.wait_for_url(f"{served.url}/orders/{number}")
    assert "Hauptstr. 5" in page.inner_text("#order")
    shoot(page, shots, "order")
    with page.expect_download() as download:
        page.click("a[href$='/documents/delivery_note']")
    assert download.value.suggested_filename.endswith(".pdf")

    page.click("button[name=accept-1]")  # htmx swaps the order's body
    page.wait_for_selector("#line-1 .state.accepted")
    page.select_option("#line-2 select[name=reason]", "out_of_stock")
    page.click("button[name=reject-2]")
    page.wait_for_selector("#line-2 .state.rejected")
    assert "Nicht auf Lager" in page.inner_text("#line-2")

    page.fill("input[name=tracking]", "123")
    page.click("text=Paket speichern")
    page.wait_for_selector("#parcel-error")
    assert "DHL" in page.inner_text("#parcel-error")
    shoot(page, shots, "order-tracking-error")
    tracking = make_number("DHL", 4711)
    page.fill("input[name=tracking]", tracking)
    page.click("text=Paket speichern")
    page.wait_for_selector(f"#parcels >> text={tracking}")
    assert page.locator("#parcel-error").count() == 0
    shoot(page, shots, "order-shipped")

    page.click("nav.main >> text=Bestand")
    page.wait_for_url(served.url + "/availability")
    csv = tmp_path / "bestand.csv"
    csv.write_text("sku;quantity\nTOOL-1;40\nLAMP-2;0\nCHAIR-3;7\n", encoding="utf-8")
    page.set_input_files("input[type=file]", str(csv))
    page.click("form[action='/availability/upload'] button")
    page.wait_for_selector(".notice")
    assert "bestand.csv" in page.inner_text(".notice")
    shoot(page, shots, "availability")

    page.click("nav.main >> text=Retouren")
    page.wait_for_url(served.url + "/returns")
    assert served.returned in page.inner_text("#returns") and "zu groß" in page.inner_text("#returns")
    shoot(page, shots, "returns")
    page.select_option("#returns select[name=condition]", "as_new")
    page.fill("#returns input[name=note]", "originalverpackt")
    page.click("#returns button[type=submit]")
    page.wait_for_selector(".notice")
    assert "originalverpackt" in page.inner_text("main") and page.locator("#returns").count() == 0
    shoot(page, shots, "returns-confirmed")

    page.click("nav.main >> text=Bestand")
    page.click("nav.lang >> text=EN")
    page.wait_for_selector("text=Report availability")
    page.goto(f"{served.url}/orders?view=shipped")
    assert number in page.inner_text("#orders")
    shoot(page, shots, "orders-shipped-en")

    page.goto(f"{served.url}/orders/{served.cancel_asked}")
    assert "the buyer cancelled the order" in page.inner_text("#cancellation")
    shoot(page, shots, "cancellation-en")
    page.click("#cancellation button[value=accept]")
    page.wait_for_selector(".notice")
    assert "Cancelled." in page.inner_text(".notice") and page.locator("#cancellation").count() == 0

    page.click("text=Log out")
    page.wait_for_url(served.url + "/login")
    page.goto(f"{served.url}/orders/{number}")
    assert page.url.startswith(served.url + "/login")  # the session is gone
    assert errors == [], errors  # no script or CSP error in the browser

    with served.session() as s:
        po = s.scalar(select(PurchaseOrder).where(PurchaseOrder.number == number))
        assert [(ln.line_no, ln.state) for ln in po.lines] == [(1, "shipped"), (2, "rejected")]
        assert [p.tracking_number for p in po.parcels] == [tracking]
        figures = {a.sku: a.quantity for a in s.scalars(select(DropshipAvailability)
                                                        .where(DropshipAvailability.partner == "DS1"))}
        assert figures == {"TOOL-1": 40, "LAMP-2": 0, "CHAIR-3": 7}
        [received] = service.returns(s, "DS1", view="received")
        assert (received.number, received.condition) == (served.returned, "as_new")
    context.close()


def test_the_real_server_believes_x_forwarded_proto_from_its_trusted_proxy_only(served):
    behind_tls = httpx.get(served.url + "/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in behind_tls.headers["set-cookie"]  # 127.0.0.1 is the trusted proxy here
    plain = httpx.get(served.url + "/login")
    assert "Secure" not in plain.headers["set-cookie"]
    assert "frame-ancestors 'none'" in plain.headers["content-security-policy"]
