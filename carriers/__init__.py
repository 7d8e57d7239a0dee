"""Carrier and fulfiller formats: one module per format that renders a delivery note, one per
confirmation file layout, and the tracking-number rules. ``formats()`` and ``readers()`` are the
registries the composition root (``caturactl.app``) hands to the services."""

from __future__ import annotations


def formats() -> dict:
    """Every document format by its name (the names ``[locations.*] format`` accepts)."""
    from carriers.delivery_note_pdf import DeliveryNotePdf
    from carriers.dhl_csv import DhlCsv
    from carriers.fulfiller_xml import FulfillerXml
    from carriers.text import TextOrder
    return {f.name: f for f in (DhlCsv(), FulfillerXml(), DeliveryNotePdf(), TextOrder())}


def readers() -> dict:
    """Every confirmation reader by its name (``[locations.*] confirmation_format``)."""
    from carriers.confirmation_csv import ConfirmationCsv
    from carriers.confirmation_xml import ConfirmationXml
    return {r.name: r for r in (ConfirmationCsv(), ConfirmationXml())}
