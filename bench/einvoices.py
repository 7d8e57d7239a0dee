"""Every invoice and credit note of a workspace against the e-invoice rules, as issued and as
XRechnung: the EN 16931 schematron on the stored XML (the one inside the PDF), and KoSIT's
XRechnung 3.0 rules (BR-DE) on the ``invoices pdf --xrechnung`` rendition of each.

    python bench/einvoices.py [WORKSPACE]      (default: demo/, after ``make demo``)

Figures go to stdout as ``name: value`` lines; each failure goes to stderr with its document.
Exit 1 when any document fails. The counts by kind say what was covered: documents with a
discount (a line allowance), with 7 % goods and shipping at 7 %, OSS, intra-EU, credit notes.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from caturactl.app import App  # noqa: E402
from caturactl.config import load  # noqa: E402
from caturactl.billing.invoicing import from_json  # noqa: E402
from caturactl.billing.models import Invoice  # noqa: E402
from connectors.einvoice.check import schematron_failures, xrechnung_failures  # noqa: E402
from connectors.einvoice.cii import with_seller_contact, xrechnung_xml  # noqa: E402

KOSIT = ROOT / "tests" / "data" / "xrechnung" / "XRechnung-CII-validation.xsl"


def kinds(doc) -> set[str]:
    out = {"credit_note" if doc.is_credit_note else "invoice"}
    if any(i.allowance for i in doc.items):
        out.add("with_discount")
    if any(i.tax_rate == Decimal(7) and not i.sku for i in doc.items):
        out.add("shipping_at_7")
    if doc.tax_country and doc.tax_country != doc.seller.country:
        out.add(f"oss_{doc.tax_country}")
    if any(t.category == "K" for t in doc.taxes):
        out.add("intra_eu")
    return out


def main(workspace: str = "demo") -> int:
    app = App(load(Path(workspace) / "caturactl.toml"))
    c = app.cfg.company
    counts: dict[str, int] = {}
    failed = 0
    started = time.perf_counter()
    with app.session() as s:
        for number, document, xml in s.execute(select(Invoice.number, Invoice.document, Invoice.xml)
                                                .order_by(Invoice.id)):
            doc = from_json(document)
            for k in kinds(doc):
                counts[k] = counts.get(k, 0) + 1
            problems = [f"EN 16931: {p}" for p in schematron_failures(xml)]
            xr_doc = with_seller_contact(doc, c.contact, c.phone, c.email)[0]
            if not xr_doc.buyer.email:  # as `invoices pdf --xrechnung --buyer-email` would (FBA: none)
                counts["xrechnung_given_buyer_email"] = counts.get("xrechnung_given_buyer_email", 0) + 1
                xr_doc = replace(xr_doc, buyer=replace(xr_doc.buyer, email="rechnung@buyer.example"))
            xr = xrechnung_xml(xr_doc)
            problems += [f"XRechnung: {p}" for p in xrechnung_failures(xr, KOSIT)]
            if problems:
                failed += 1
                print(f"{number}: " + "; ".join(problems), file=sys.stderr)
    documents = sum(v for k, v in counts.items() if k in ("invoice", "credit_note"))
    print(f"documents: {documents}")
    for k in sorted(counts):
        print(f"{k}: {counts[k]}")
    print(f"failed: {failed}")
    print(f"seconds: {time.perf_counter() - started:.1f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
