"""openTRANS 2.1 for dropshippers: the purchase order we send (ORDER, or as CSV: ``order_csv``),
the answers we read back (ORDERRESPONSE, DISPATCHNOTIFICATION), and availability feeds (CSV) on
the same return channel; beside them, as CSV, what openTRANS has no document for here: return
notices and their confirmations (``returns``), cancellation requests and their answers
(``cancellations``); and the partner's invoices to us (``invoices``: CSV, ZUGFeRD, XRechnung).

``OpenTrans`` implements ``caturactl.fulfilment.dropship.messages.PartnerInterface``; the
composition root (``caturactl.app``) hands it to the dropship services.
"""

from __future__ import annotations

from datetime import tzinfo

from caturactl.core.errors import InputError
from caturactl.fulfilment.dropship import partner_stock
from caturactl.fulfilment.dropship.messages import PartnerFile, PurchaseOrderDoc
from caturactl.fulfilment.dropship.partner_files import CancellationRequestDoc, PartnerInvoiceDoc, ReturnNoticeDoc
from caturactl.ports import RenderedFile
from connectors.opentrans import answers, cancellations, csv_files, invoices, order, order_csv, returns


class OpenTrans:
    """openTRANS 2.1 ORDER out; ORDERRESPONSE, DISPATCHNOTIFICATION and availability CSV in; the
    return and cancellation CSVs both ways; partner invoices in."""

    name = "opentrans"

    def render_order(self, doc: PurchaseOrderDoc, order_format: str = "opentrans") -> RenderedFile:
        """The ORDER file ``<number>.xml``, or for ``order_format`` "csv" the CSV ``<number>.csv``
        (``order_csv``); raises InputError naming a field that does not fit."""
        return order_csv.render(doc) if order_format == "csv" else order.render(doc)

    def read(self, name: str, content: bytes, tz: tzinfo) -> PartnerFile:
        """A file from a partner's return channel, told apart by its extension and root element (a
        CSV by its header); all or nothing (InputError naming FILE:LINE:FIELD)."""
        if name.lower().endswith((".csv", ".txt")):
            header = csv_files.header_of(name, content)
            if returns.is_confirmation(header):
                return PartnerFile(kind="return", returns=returns.read(name, content))
            if cancellations.is_answer(header):
                return PartnerFile(kind="cancellation", cancellations=cancellations.read(name, content))
            return PartnerFile(kind="availability", availability=tuple(partner_stock.read_csv(name, content)),
                               as_of=partner_stock.figures_as_of(name, content, tz))
        if not name.lower().endswith(".xml"):
            raise InputError("neither .xml (openTRANS) nor .csv (availability)", where=name)
        return answers.read(name, content, tz)

    def render_return(self, doc: ReturnNoticeDoc) -> RenderedFile:
        """The return notice ``RETURN_<number>.csv``."""
        return returns.render(doc)

    def render_cancellation(self, doc: CancellationRequestDoc) -> RenderedFile:
        """The cancellation request ``CANCEL_<number>.csv``."""
        return cancellations.render(doc)

    def read_invoice(self, name: str, content: bytes) -> PartnerInvoiceDoc:
        """A partner's invoice: CSV, ZUGFeRD PDF, CII or UBL XML (``invoices``)."""
        return invoices.read(name, content)


__all__ = ["OpenTrans"]
