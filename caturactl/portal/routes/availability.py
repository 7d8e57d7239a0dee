"""What the partner has in stock: the figures it last reported (with their age and whether they
still count), a form to report new ones, and a CSV upload (all or nothing)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from caturactl.core import clock
from caturactl.core.errors import InputError
from caturactl.fulfilment.dropship import partner_stock, service
from caturactl.portal.visit import Upload, Visit, endpoint

MAX_NEW_ROWS = 5  # empty rows for SKUs not reported yet


def availability_page(visit: Visit) -> Response:
    """The partner's reported availability and the forms that update it."""
    return _page(visit)


def _page(visit: Visit, *, error: str = "", upload_error: str = "", notice: str = "", status: int = 200) -> Response:
    rows = partner_stock.stock_rows(visit.db, visit.cfg, clock.now(), visit.partner)
    location = visit.cfg.locations.get(visit.partner)
    return visit.render("availability.html", status=status, here="/availability", rows=rows, error=error,
                        upload_error=upload_error,
                        notice=notice, new_rows=range(MAX_NEW_ROWS),
                        max_age=location.availability_max_age_hours if location else 0)


def update(visit: Visit) -> Response:
    """Reports the quantities of the form (fields ``qty:SKU``, and ``new-sku-N``/``new-qty-N``)
    as of now; all or nothing."""
    try:
        quantities = _quantities(visit)
    except InputError as exc:
        return _page(visit, error=str(exc), status=422)
    if not quantities:
        return _page(visit, error=visit.t("availability.nothing"), status=422)
    error = visit.attempt(service.set_availability, visit.db, visit.partner, quantities, actor=visit.actor,
                          cfg=visit.cfg)
    if error:
        return _page(visit, error=error, status=422)
    return _page(visit, notice=visit.t("availability.saved", count=len(quantities)))


def _quantities(visit: Visit) -> dict[str, int]:
    out: dict[str, int] = {}
    for key in visit.form:
        if key.startswith("qty:"):
            out[key[4:]] = _whole(visit.field(key), key[4:])
    for i in range(MAX_NEW_ROWS):
        sku, qty = visit.field(f"new-sku-{i}"), visit.field(f"new-qty-{i}")
        if sku or qty:
            if not sku:
                raise InputError("a quantity without a SKU", where=f"row {i + 1}")
            out[sku] = _whole(qty, sku)
    return out


def _whole(text: str, where: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise InputError(f"not a quantity: {text[:20]!r} (a whole number, 0 or more)", where=where)
    return int(text)


def upload(visit: Visit) -> Response:
    """Reads an availability CSV (``sku;quantity``); a bad line changes nothing and is named."""
    file = visit.form.get("file")
    if not isinstance(file, Upload) or not file.data:
        return _page(visit, upload_error=visit.t("availability.no_file"), status=422)
    error = visit.attempt(service.import_availability_csv, visit.db, visit.partner, file.data,
                          actor=visit.actor, filename=file.filename or "upload.csv", cfg=visit.cfg)
    if error:
        return _page(visit, upload_error=error, status=422)
    return _page(visit, notice=visit.t("availability.uploaded", name=file.filename))


ROUTES = [
    Route("/availability", endpoint(availability_page), methods=["GET"]),
    Route("/availability", endpoint(update), methods=["POST"]),
    Route("/availability/upload", endpoint(upload), methods=["POST"]),
]
