"""The partner's purchase orders: the lists (open, to ship, shipped) with paging, one purchase
order with its lines to accept or reject, the merchant's cancellation request to answer, its
parcels with tracking numbers, and its documents.

Every action calls the dropship service (caturactl/fulfilment/dropship/service.py), which checks
that the purchase order is this partner's (NotFound otherwise: 404) and records the event with
the user as actor. After an htmx request the order's body is sent back alone, with any error
next to the form that caused it; without JavaScript the browser is sent back to the page.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from carriers import tracking
from caturactl.core.errors import InputError
from caturactl.fulfilment.dropship import cancellations, service
from caturactl.portal.visit import Visit, endpoint

VIEWS = ("open", "to_ship", "shipped")
DOCUMENT_TYPES = {".pdf": "application/pdf", ".csv": "text/csv; charset=utf-8", ".xml": "application/xml",
                  ".txt": "text/plain; charset=utf-8", ".zpl": "text/plain; charset=utf-8"}


def _page_number(visit: Visit) -> int:
    try:
        return max(1, min(int(visit.request.query_params.get("page", "1")), 1_000_000))
    except ValueError:
        return 1


def order_list(visit: Visit) -> Response:
    """One page of the partner's purchase orders in one view, newest first."""
    view = visit.request.query_params.get("view", "open")
    if view not in VIEWS:
        view = "open"
    size, page = visit.cfg.portal.page_size, _page_number(visit)
    total = service.count_purchase_orders(visit.db, visit.partner, view=view)
    pages = max(1, -(-total // size))
    page = min(page, pages)
    rows = service.purchase_orders(visit.db, visit.partner, view=view, limit=size, offset=(page - 1) * size)
    counts = {v: (total if v == view else service.count_purchase_orders(visit.db, visit.partner, view=v))
              for v in VIEWS}
    return visit.render("orders.html", view=view, views=VIEWS, rows=rows, page=page, pages=pages, total=total,
                        counts=counts)


def order_page(visit: Visit, number: str) -> Response:
    """One purchase order: ship-to, lines, parcels, documents (404 when not the partner's)."""
    return _order(visit, number)


def _order(visit: Visit, number: str, *, errors: dict[str, str] | None = None, notice: str = "",
           status: int = 200) -> Response:
    detail = service.purchase_order(visit.db, visit.partner, number)
    asked = next(iter(cancellations.pending(visit.db, visit.partner, purchase_order=detail.number)), None)
    values = dict(po=detail, here=f"/orders/{detail.number}", errors=errors or {}, notice=notice, cancellation=asked,
                  reasons=service.REJECT_REASONS,
                  carriers=_carriers(visit), tracking_url=tracking.tracking_url)
    if visit.htmx:
        return visit.render("_order.html", **values)  # htmx swaps only 2xx answers
    return visit.render("order.html", status=status, **values)


def _after(visit: Visit, number: str, error: str | None, where: str, notice: str) -> Response:
    """The answer to an action on ``number``: the order's body again (htmx), the page with the
    error (422), or a redirect back to the page."""
    if error is not None:
        return _order(visit, number, errors={where: error}, status=422)
    if visit.htmx:
        return _order(visit, number, notice=notice)
    return visit.redirect(f"/orders/{number}")


def accept(visit: Visit, number: str) -> Response:
    """Accepts one line (form field ``line``) or, without it, every open line."""
    line = visit.field("line")
    line_nos = [_int(line, "line")] if line else None
    error = visit.attempt(service.accept_lines, visit.db, visit.partner, number, line_nos, actor=visit.actor,
                          cfg=visit.cfg)
    return _after(visit, number, error, f"line-{line}" if line else "accept", visit.t("order.accepted"))


def reject(visit: Visit, number: str, line_no: int) -> Response:
    """Rejects one line with a reason from ``service.REJECT_REASONS`` and the partner's note."""
    error = visit.attempt(service.reject_line, visit.db, visit.partner, number, line_no, visit.field("reason"),
                          note=visit.field("note")[:1000], actor=visit.actor, cfg=visit.cfg)
    return _after(visit, number, error, f"line-{line_no}", visit.t("order.rejected"))


def answer_cancellation(visit: Visit, number: str) -> Response:
    """Answers the merchant's cancellation request: ``answer`` "accept" (the parcel has not left:
    the purchase order is cancelled) or "refuse" (it is on its way), with the partner's note."""
    choice = visit.field("answer")
    if choice not in ("accept", "refuse"):
        return _after(visit, number, visit.t("cancel.choose"), "cancellation", "")
    error = visit.attempt(cancellations.answer_request, visit.db, visit.partner, number, accept=choice == "accept",
                          note=visit.field("note")[:1000], actor=visit.actor)
    return _after(visit, number, error, "cancellation", visit.t("cancel.accepted" if choice == "accept" else "cancel.refused"))


def add_parcel(visit: Visit, number: str) -> Response:
    """Reports a parcel: carrier, tracking number (checked with the carrier's rules) and, per
    accepted line, how many pieces are in it (form fields ``qty-LINE``; none given: all that are left)."""
    try:
        lines = _parcel_lines(visit)
    except InputError as exc:
        return _after(visit, number, str(exc), "parcel", "")
    error = visit.attempt(service.add_parcel, visit.db, visit.partner, number, carrier=visit.field("carrier"),
                          tracking=visit.field("tracking"), lines=lines, actor=visit.actor, cfg=visit.cfg)
    return _after(visit, number, error, "parcel", visit.t("order.parcel_added"))


def _parcel_lines(visit: Visit) -> dict[int, int] | None:
    lines = {}
    for key in visit.form:
        if key.startswith("qty-") and visit.field(key):
            quantity = _int(visit.field(key), key)
            if quantity:
                lines[_int(key[4:], key)] = quantity
    return lines or None


def _int(text: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"not a whole number: {text[:20]!r}", where=where) from None
    if not 0 <= value <= 100_000:
        raise InputError(f"{value} is out of range", where=where)
    return value


def document(visit: Visit, number: str, kind: str) -> Response:
    """A document of the purchase order as a download (delivery note, label, invoice)."""
    try:
        filename, content = service.document(visit.db, visit.partner, number, kind)
    except InputError:  # NotFound, or a kind of document this order has not: both "no such page"
        return visit.render("error.html", status=404, code=404, message=visit.t("error.not_found"))
    suffix = filename[filename.rfind("."):].lower() if "." in filename else ""
    safe = "".join(c for c in filename if c.isalnum() or c in "._-") or "document"
    return Response(content, media_type=DOCUMENT_TYPES.get(suffix, "application/octet-stream"),
                    headers={"Content-Disposition": f'attachment; filename="{safe}"'})


def _carriers(visit: Visit) -> list[str]:
    """The carriers (DHL, DPD, ...: what add_parcel and the tracking rules take) of the carrier
    products the partner's terms name, each once."""
    location = visit.cfg.locations.get(visit.partner)
    keys = location.carriers if location else []
    return list(dict.fromkeys(visit.cfg.carriers[key].carrier for key in keys if key in visit.cfg.carriers))


ROUTES = [
    Route("/orders", endpoint(order_list), methods=["GET"]),
    Route("/orders/{number}", endpoint(order_page), methods=["GET"]),
    Route("/orders/{number}/accept", endpoint(accept), methods=["POST"]),
    Route("/orders/{number}/lines/{line_no:int}/reject", endpoint(reject), methods=["POST"]),
    Route("/orders/{number}/parcels", endpoint(add_parcel), methods=["POST"]),
    Route("/orders/{number}/cancellation", endpoint(answer_cancellation), methods=["POST"]),
    Route("/orders/{number}/documents/{kind}", endpoint(document), methods=["GET"]),
]
