"""The invoice renderer the composition root hands to the invoicing service: the visible PDF/A-3B
(``pdf.InvoicePdf``), the EN 16931 CII XML (``cii``) embedded as factur-x.xml (``hybrid``), and
the XML alone (Factur-X EN 16931 or XRechnung) for whoever asks for it."""

from __future__ import annotations

from multiprocessing import get_context
from typing import Sequence

from caturactl.ports import InvoiceDocument, RenderedFile
from connectors.einvoice import cii, hybrid
from connectors.einvoice.pdf import InvoicePdf


class Renderer:
    """One per process: the PDF layout and its fonts are loaded once and reused."""

    def __init__(self) -> None:
        self._pdf = InvoicePdf()

    def pdf(self, doc: InvoiceDocument) -> RenderedFile:
        """The hybrid invoice: PDF/A-3B with factur-x.xml (EN 16931) embedded and XSD-checked."""
        xml = cii.cii_xml(doc)
        lang = "de-DE" if doc.language == "de" else "en-GB"
        return RenderedFile(f"{doc.number}.pdf", hybrid.embed(self._pdf.render(doc), xml, lang=lang),
                            "application/pdf")

    def xml(self, doc: InvoiceDocument, flavour: str = "en16931") -> RenderedFile:
        """The CII XML alone: "en16931" or "xrechnung"."""
        content = cii.xrechnung_xml(doc) if flavour == "xrechnung" else cii.cii_xml(doc)
        suffix = "-xrechnung.xml" if flavour == "xrechnung" else ".xml"
        return RenderedFile(f"{doc.number}{suffix}", content, "application/xml")

    def check(self, doc: InvoiceDocument) -> None:
        """Raises the InputError rendering ``doc`` would (its figures and EN 16931 rules, a field
        § 14 UStG needs, a character no font has); cheap, nothing is laid out or serialised."""
        cii.check_consistency(doc)
        self._pdf.check(doc)

    def both(self, doc: InvoiceDocument) -> tuple[bytes, bytes]:
        """(hybrid PDF, XML) with the XML built once."""
        xml = cii.cii_xml(doc)
        lang = "de-DE" if doc.language == "de" else "en-GB"
        return hybrid.embed(self._pdf.render(doc), xml, lang=lang), xml


_worker: Renderer | None = None


def _init_worker() -> None:
    global _worker
    _worker = Renderer()


def _render_in_worker(doc: InvoiceDocument) -> tuple[bytes, bytes]:
    assert _worker is not None
    return _worker.both(doc)


class RenderPool:
    """Renders batches of invoices in ``jobs`` processes that live for the whole run (each loads
    the layout and fonts once); call it with documents, close it at the end."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._pool = None

    def __call__(self, docs: Sequence[InvoiceDocument]) -> list[tuple[bytes, bytes]]:
        """(hybrid PDF, XML) for each document, in order."""
        if self._pool is None:
            self._pool = get_context("spawn").Pool(self.jobs, initializer=_init_worker)
        return self._pool.map(_render_in_worker, docs, chunksize=max(1, len(docs) // (self.jobs * 4)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None
