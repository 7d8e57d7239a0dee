"""Benchmark of the invoice PDF: our renderer against the naive fpdf2 way, in one run.

    python bench/invoices.py [-n 200] [--jobs 2] [--seed 7]

Figures go to stdout as ``name: value`` lines, nothing else; notes go to stderr.

The documents: N German invoices of a realistic size (3-8 items from a tea shop's catalogue,
some titles long enough to wrap, one or two VAT rates, B2C buyers in Germany), figures that add
up (so the EN 16931 XML can be made from them too).

- ``naive_per_s``: a one-page invoice the way fpdf2's documentation shows it -- new ``FPDF``,
  ``add_font`` for DejaVu Sans and Bold, title, address block, ``pdf.table()`` of the items,
  three total lines -- per invoice (reference/toolchain.md §7 measured 11-12/s for this). It is
  a plain PDF, not PDF/A (PDF/A would only make the naive side slower).
- ``ours_per_s``: ``InvoicePdf.render``, PDF/A-3B, no XML.
- ``ours_with_xml_per_s``: render + ``cii.cii_xml`` + ``hybrid.embed(check_xsd=False)``, when
  those modules exist (drafthorse still checks the XML against its XSD while serialising).
- ``ratio``: ours / naive.
- ``jobs_N_per_s``: ``render_many(docs, jobs=N)``, wall time including the pool's start and each
  worker's one font preparation.
- ``ours_setup_s``: the one-time font preparation of a process (not in ``ours_per_s``).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import random
import sys
import time
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fpdf import FPDF  # noqa: E402
from fpdf.fonts import FontFace  # noqa: E402

from caturactl.ports import InvoiceDocument, InvoiceItem, InvoiceParty, TaxBreakdown  # noqa: E402
from connectors.einvoice.pdf import DEFAULT_FONT_DIR, InvoicePdf, render_many  # noqa: E402

CENT = Decimal("0.01")
CATALOGUE = [  # (sku, title, gross price, rate)
    ("TEE-ABEND", "Bio-Kräutertee „Abendruhe“, 20 Beutel", "4.49", "7"),
    ("TEE-GRUEN", "Grüner Tee Sencha aus Japan, lose, 100 g", "8.90", "7"),
    ("TEE-CHAI", "Chai Gewürzmischung mit Zimt, Kardamom, Ingwer und Nelken, 250 g", "11.50", "7"),
    ("HONIG-500", "Deutscher Blütenhonig, cremig, 500 g Glas", "7.99", "7"),
    ("KANNE-1L", "Teekanne aus Borosilikatglas mit Edelstahlsieb, 1 l", "29.00", "19"),
    ("SIEB-ES", "Edelstahl-Teesieb", "5.99", "19"),
    ("TASSE-2ER", "Doppelwandige Gläser, 2er-Set – spülmaschinengeeignet", "19.95", "19"),
    ("STOEVCHEN", "Teestövchen aus Gusseisen, schwarz emailliert", "24.50", "19"),
    ("DOSE-GR", "Vorratsdose aus Weißblech, luftdicht, Motiv „Kirschblüte“", "9.90", "19"),
    ("GUTSCHEIN", "Geschenkkarton mit Schleife", "2.50", "19"),
]
NAMES = ["Jürgen Müller", "Anna Schäfer", "Özlem Yılmaz", "Lukas Weiß", "Marie-Luise Groß",
         "Zoë Becker", "Piotr Kowalski", "Ines Hoffmann"]
CITIES = [("Hauptstraße 12a", "50667", "Köln"), ("Marienplatz 3", "80331", "München"),
          ("Königsallee 27", "40212", "Düsseldorf"), ("Schloßstraße 8", "12163", "Berlin")]
SELLER = InvoiceParty(name="Muster Handel GmbH", street="Beispielstraße 1", postal_code="10115",
                      city="Berlin", country="DE", vat_id="DE123456789",
                      tax_number="27/123/45678", email="rechnung@muster-handel.de",
                      phone="+49 30 1234567")


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def documents(n: int, seed: int) -> list[InvoiceDocument]:
    """``n`` invoices whose figures add up: line nets from net unit prices, VAT per rate."""
    rng = random.Random(seed)
    docs = []
    start = date(2026, 11, 2)
    for i in range(n):
        picks = rng.sample(CATALOGUE, rng.randint(3, 8))
        if rng.random() < 0.3:  # a third of the orders has only one rate
            rate = rng.choice(("7", "19"))
            picks = [(sku, title, price, rate) for sku, title, price, _ in picks]
        items = []
        for pos, (sku, title, gross, rate) in enumerate(picks, start=1):
            qty = Decimal(rng.choice((1, 1, 1, 2, 3)))
            unit_net = (Decimal(gross) * 100 / (100 + Decimal(rate))).quantize(Decimal("0.0001"))
            items.append(InvoiceItem(position=pos, sku=sku, description=title, quantity=qty,
                                     unit_net=unit_net,
                                     net=(qty * unit_net).quantize(CENT, rounding=ROUND_HALF_UP),
                                     tax_category="S", tax_rate=Decimal(rate)))
        nets: dict[Decimal, Decimal] = {}
        for it in items:
            nets[it.tax_rate] = nets.get(it.tax_rate, Decimal(0)) + it.net
        taxes = tuple(TaxBreakdown("S", rate, net, (net * rate / 100).quantize(CENT, ROUND_HALF_UP))
                      for rate, net in sorted(nets.items(), reverse=True))
        net_total = sum((t.net for t in taxes), Decimal(0))
        tax_total = sum((t.tax for t in taxes), Decimal(0))
        street, code, city = rng.choice(CITIES)
        issued = start + timedelta(days=i % 20)
        docs.append(InvoiceDocument(
            number=f"RE-2026-{100000 + i}", type_code=380, issue_date=issued,
            supply_date=issued - timedelta(days=1), currency="EUR", seller=SELLER,
            buyer=InvoiceParty(name=rng.choice(NAMES), street=street, postal_code=code, city=city,
                               country="DE"),
            ship_to=None, items=tuple(items), taxes=taxes, net_total=net_total,
            tax_total=tax_total, gross_total=net_total + tax_total,
            prepaid=net_total + tax_total, due=Decimal("0.00"),
            order_id=f"028-{rng.randrange(10**7):07d}-{rng.randrange(10**7):07d}",
            order_date=issued - timedelta(days=2), channel="Amazon.de",
            customer_number=f"K{i:06d}", delivery_ids=(f"L{i:06d}",),
            payment_terms="Bezahlt über Amazon.", seller_iban="DE02120300000000202051",
            seller_bic="BYLADEM1001", seller_bank="Deutsche Kreditbank",
            footer=("Amtsgericht Berlin-Charlottenburg, HRB 123456",
                    "Geschäftsführerin: Erika Mustermann")))
    return docs


def de(amount: Decimal) -> str:
    return format(amount, ",.2f").replace(",", "_").replace(".", ",").replace("_", ".") + " €"


def naive(doc: InvoiceDocument, font_dir: str) -> bytes:
    """The invoice as fpdf2's tutorials draw it: new FPDF, add_font, cells and table()."""
    pdf = FPDF(format="A4")
    pdf.add_font("DejaVu", "", f"{font_dir}/DejaVuSans.ttf")
    pdf.add_font("DejaVu", "B", f"{font_dir}/DejaVuSans-Bold.ttf")
    pdf.set_creation_date(datetime.combine(doc.issue_date, clock(12), tzinfo=timezone.utc))
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 16)
    pdf.cell(0, 10, f"Rechnung {doc.number}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 10)
    seller, buyer = doc.seller, doc.buyer
    pdf.cell(0, 5, f"{seller.name} · {seller.street} · {seller.postal_code} {seller.city}",
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)
    pdf.multi_cell(85, 5, f"{buyer.name}\n{buyer.street}\n{buyer.postal_code} {buyer.city}",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.cell(0, 5, f"Datum {doc.issue_date:%d.%m.%Y}   Leistungsdatum {doc.supply_date:%d.%m.%Y}",
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)
    pdf.set_font("DejaVu", "", 9)
    with pdf.table(col_widths=(10, 25, 60, 15, 20, 15, 25), line_height=5,
                   headings_style=FontFace(emphasis="BOLD")) as table:
        table.row(("Pos.", "Artikelnr.", "Bezeichnung", "Menge", "Einzelpreis", "USt.", "Netto"))
        for it in doc.items:
            table.row((str(it.position), it.sku, it.description, str(it.quantity),
                       de(it.unit_net.quantize(CENT)), f"{it.tax_rate} %", de(it.net)))
    pdf.ln(5)
    pdf.set_font("DejaVu", "", 10)
    for label, value in (("Summe netto", doc.net_total), ("Umsatzsteuer", doc.tax_total),
                         ("Gesamtbetrag", doc.gross_total)):
        pdf.cell(150, 6, label)
        pdf.cell(0, 6, de(value), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, f"USt-IdNr. {seller.vat_id}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def rate(run: Callable[[InvoiceDocument], object], docs: list[InvoiceDocument]) -> float:
    run(docs[0])  # warm: imports, Babel's locale data, caches
    t0 = time.perf_counter()
    for doc in docs:
        run(doc)
    return len(docs) / (time.perf_counter() - t0)


def xml_pipeline(renderer: InvoicePdf) -> Callable[[InvoiceDocument], bytes] | None:
    try:
        cii = importlib.import_module("connectors.einvoice.cii")
        hybrid = importlib.import_module("connectors.einvoice.hybrid")
    except ImportError as err:
        note(f"no XML embedding measured: {err}")
        return None
    make_xml = getattr(cii, "cii_xml", None)
    embed = getattr(hybrid, "embed", None)
    if make_xml is None or embed is None:
        note("no XML embedding measured: cii.cii_xml or hybrid.embed is missing")
        return None
    embed_kw = {"check_xsd": False} if "check_xsd" in inspect.signature(embed).parameters else {}
    if not embed_kw:
        note("hybrid.embed has no check_xsd parameter: measured with its default")
    note("ours_with_xml: cii_xml serialises through drafthorse, which validates against its XSD")

    def run(doc: InvoiceDocument) -> bytes:
        return embed(renderer.render(doc), make_xml(doc), **embed_kw)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=200, help="invoices per measurement (default 200)")
    ap.add_argument("--jobs", type=int, default=2, help="processes for jobs_N_per_s (0: skip)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--font-dir", default=DEFAULT_FONT_DIR)
    args = ap.parse_args()
    docs = documents(args.n, args.seed)

    note(f"{args.n} invoices, {sum(len(d.items) for d in docs) / len(docs):.1f} items each on average")
    note("naive: new FPDF + add_font per invoice")
    naive_rate = rate(lambda d: naive(d, args.font_dir), docs)

    t0 = time.perf_counter()
    renderer = InvoicePdf(font_dir=args.font_dir)
    setup = time.perf_counter() - t0
    note("ours: InvoicePdf.render (PDF/A-3B)")
    ours_rate = rate(renderer.render, docs)
    with_xml = xml_pipeline(renderer)
    xml_rate = rate(with_xml, docs) if with_xml else None

    jobs_rate = None
    if args.jobs > 0:
        note(f"jobs: render_many with a pool of {args.jobs} processes")
        t0 = time.perf_counter()
        render_many(docs, jobs=args.jobs, font_dir=args.font_dir)
        jobs_rate = len(docs) / (time.perf_counter() - t0)

    print(f"naive_per_s: {naive_rate:.1f}")
    print(f"ours_per_s: {ours_rate:.1f}")
    if xml_rate is not None:
        print(f"ours_with_xml_per_s: {xml_rate:.1f}")
    print(f"ratio: {ours_rate / naive_rate:.2f}")
    if jobs_rate is not None:
        print(f"jobs_{args.jobs}_per_s: {jobs_rate:.1f}")
    print(f"ours_setup_s: {setup:.2f}")


if __name__ == "__main__":
    main()
