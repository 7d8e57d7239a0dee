"""Returns sent back to the partner: the open ones with their return labels, and confirming
receipt and condition."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from caturactl.core.errors import CaturactlError, NotFoundError
from caturactl.fulfilment.dropship import service
from caturactl.portal.visit import Visit, endpoint


def returns_page(visit: Visit) -> Response:
    """The partner's open returns, each with the form that confirms it, and the ones it received."""
    return _page(visit)


def _page(visit: Visit, *, errors: dict[int, str] | None = None, notice: str = "", status: int = 200) -> Response:
    rows = service.returns(visit.db, visit.partner, view="open", cfg=visit.cfg)
    received = service.returns(visit.db, visit.partner, view="received", cfg=visit.cfg)
    return visit.render("returns.html", status=status, here="/returns", rows=rows, received=received,
                        errors=errors or {}, notice=notice, conditions=service.RETURN_CONDITIONS)


def confirm(visit: Visit, return_id: int) -> Response:
    """Confirms that return ``return_id`` arrived, in which condition (NotFound: 404)."""
    error = visit.attempt(service.confirm_return, visit.db, visit.partner, return_id,
                          condition=visit.field("condition"), note=visit.field("note")[:1000], actor=visit.actor,
                          cfg=visit.cfg)
    if error:
        return _page(visit, errors={return_id: error}, status=422)
    return _page(visit, notice=visit.t("returns.confirmed"))


def label(visit: Visit, return_id: int) -> Response:
    """The return's label as a PDF download (NotFound for another partner's return: 404; a label
    that cannot be made, e.g. no address configured for the partner: 409, ask the merchant)."""
    try:
        filename, content = service.return_label(visit.db, visit.partner, return_id)
    except NotFoundError:
        raise
    except CaturactlError:
        return visit.render("error.html", status=409, code=409, message=visit.t("error.label"))
    return Response(content, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


ROUTES = [
    Route("/returns", endpoint(returns_page), methods=["GET"]),
    Route("/returns/{return_id:int}/confirm", endpoint(confirm), methods=["POST"]),
    Route("/returns/{return_id:int}/label", endpoint(label), methods=["GET"]),
]
