"""The EN 16931 e-invoice as UN/CEFACT CII XML, made from the invoice values we already computed.

Why this module exists: for German B2B supplies an invoice is, from 2027/2028 on, only a valid
invoice if it carries structured EN 16931 data, and in a hybrid PDF the XML is the legally
relevant part. So the XML must say exactly what the printed invoice says. This module maps an
``InvoiceDocument`` one-to-one onto CII in two flavours:

- Factur-X / ZUGFeRD profile EN 16931 (guideline ``urn:cen.eu:en16931:2017``), the XML that
  ``hybrid.embed`` puts into the PDF/A-3;
- XRechnung 3.0 CII, for buyers (public authorities, some companies) who want XML only.

It never computes an amount: the caller rounded everything with its one rounding rule. It does
check that the caller's figures add up and refuses (``InputError`` naming the BT) when they do
not, because an e-invoice whose totals contradict each other must never be issued.

Built with drafthorse's object model, which validates against the Factur-X EN 16931 XSD it
bundles (1.0.07) when serialising. Everything this mapping needs could be expressed with it; no
element is written with raw lxml.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from typing import NoReturn

from drafthorse.models.accounting import ApplicableTradeTax, TradeAllowanceCharge
from drafthorse.models.document import Document
from drafthorse.models.note import IncludedNote
from drafthorse.models.party import PostalTradeAddress, TaxRegistration, TradeParty
from drafthorse.models.payment import PaymentMeans, PaymentTerms
from drafthorse.models.trade import TradeSettlement
from drafthorse.models.tradelines import LineItem
from lxml import etree

from caturactl.core.errors import InputError
from caturactl.ports import InvoiceDocument, InvoiceItem, InvoiceParty, TaxBreakdown
from connectors.einvoice.payment import payment_of, refund_text

GUIDELINE_EN16931 = "urn:cen.eu:en16931:2017"
GUIDELINE_XRECHNUNG = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
# BT-23: the XRechnung 3.0 schematron carries Peppol rule PEPPOL-EN16931-R001 ("Business process
# MUST be provided"); it reads the value as a Peppol billing process id, so that is what we send.
BUSINESS_PROCESS_XRECHNUNG = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

CENT = Decimal("0.01")
_Fail = Callable[[str], NoReturn]
_TYPE_CODES = {380, 381}  # commercial invoice, credit note (UNTDID 1001)
# UNCL5305 categories we issue. O (not subject to VAT) is left out on purpose: it forbids VAT ids
# on the invoice (BR-O-02), which our seller always has.
_CATEGORIES = {"S", "Z", "E", "AE", "K", "G"}
# The schematron wants a reason (BT-120) or code (BT-121) for these (BR-E-10, BR-AE-10, BR-IC-10,
# BR-G-10) and forbids both for S and Z (BR-S-10, BR-Z-10).
_NEEDS_EXEMPTION = {"E", "AE", "K", "G"}
# The only VATEX codes that mean "reverse charge" and "intra-community supply".
_DEFAULT_EXEMPTION_CODE = {"AE": "VATEX-EU-AE", "K": "VATEX-EU-IC"}
# A line allowance (BG-27) is a discount: UNTDID 5189 code 95, with the reason text (BT-139) the
# caller gave or, without one, the word for a discount (BR-42 wants a code or a text).
_DISCOUNT_CODE = "95"
_DISCOUNT_WORD = {"de": "Rabatt", "en": "Discount"}


def cii_xml(doc: InvoiceDocument) -> bytes:
    """The Factur-X/ZUGFeRD EN 16931 CII XML (UTF-8) for ``doc``, XSD-valid.

    Raises InputError naming the BT when the figures do not add up or a value the EN 16931
    rules require is missing.
    """
    check_consistency(doc)
    return _serialize(_build(doc, xrechnung=False), doc)


def xrechnung_xml(doc: InvoiceDocument) -> bytes:
    """The XRechnung 3.0 CII XML (UTF-8) for ``doc``.

    Adds what XRechnung requires on top of EN 16931: buyer reference BT-10 (``buyer_reference``
    or else the order id), business process BT-23, seller contact BG-6 (name, phone, e-mail),
    seller and buyer electronic addresses BT-34/BT-49 (scheme EM), payment instructions BG-16.
    Raises InputError naming what is missing. The XRechnung rules (BR-DE-*) are KoSIT's
    schematron, which ``check.xrechnung_failures`` runs when given its compiled XSLT.
    """
    check_consistency(doc)
    _check_xrechnung(doc)
    return _serialize(_build(doc, xrechnung=True), doc)


def with_seller_contact(doc: InvoiceDocument, contact: str, phone: str,
                        email: str) -> tuple[InvoiceDocument, list[str]]:
    """``doc`` with the seller contact (BT-41 name, BT-42 phone, BT-43 e-mail) filled in where
    it is empty, and the names of the fields filled. A field the document has stays as issued.

    Why: an invoice keeps the seller data of its issue day, and one issued before the contact
    was configured fails XRechnung's BR-DE-5/6/7. Its XRechnung is a second rendition of that
    invoice, so it may carry today's contact; the stored invoice and its PDF do not change.
    """
    seller = doc.seller
    filled = {name: value.strip() for name, value, have in (
        ("contact", contact, seller.contact), ("phone", phone, seller.phone),
        ("email", email, seller.email)) if not have.strip() and value.strip()}
    if not filled:
        return doc, []
    return replace(doc, seller=replace(seller, **filled)), list(filled)


# --- consistency ------------------------------------------------------------------------------


def check_consistency(doc: InvoiceDocument) -> None:
    """Returns when ``doc``'s figures add up and the EN 16931 rules we can see are met.

    Raises InputError naming the first BT that is wrong (where = invoice number).
    """
    where = doc.number or "invoice"

    def fail(message: str) -> NoReturn:
        raise InputError(message, where=where)

    if not doc.number.strip():
        fail("BT-1 invoice number is empty")
    if doc.type_code not in _TYPE_CODES:
        fail(f"BT-3 type code {doc.type_code} is not 380 (invoice) or 381 (credit note)")
    if len(doc.currency) != 3 or not doc.currency.isalpha() or not doc.currency.isupper():
        fail(f"BT-5 currency {doc.currency!r} is not an ISO 4217 code")
    if doc.is_credit_note and not doc.preceding_invoice.strip():
        # § 31 Abs. 5 UStDV: a correction must name the invoice it corrects.
        fail("BT-25 preceding invoice is required for a credit note (381)")
    if not doc.items:
        fail("BG-25 an invoice needs at least one line (BR-16)")

    _check_party(doc.seller, "seller", fail)
    _check_party(doc.buyer, "buyer", fail)
    if doc.ship_to is not None:
        _check_party(doc.ship_to, "ship-to", fail)
    if not doc.seller.vat_id:
        # BR-CO-26: the seller must be identifiable; BT-29/BT-30 are not in our contract.
        fail("BT-31 seller VAT id is required (BR-CO-26)")

    for item in doc.items:
        _check_item(item, fail)

    # BG-23 must hold exactly one breakdown per category and rate used by the lines, with the
    # lines' net sum as taxable amount (BR-S-08, BR-AE-08, BR-IC-08, BR-E-08, BR-Z-08, BR-G-08).
    line_nets: dict[tuple[str, Decimal], Decimal] = defaultdict(Decimal)
    for item in doc.items:
        line_nets[(item.tax_category, item.tax_rate)] += item.net
    seen: set[tuple[str, Decimal]] = set()
    for tax in doc.taxes:
        key = (tax.category, tax.rate)
        label = f"{tax.category} {tax.rate} %"
        if key in seen:
            fail(f"BG-23 tax breakdown {label} appears twice")
        seen.add(key)
        if key not in line_nets:
            fail(f"BG-23 tax breakdown {label} has no invoice line")
        _check_amount(tax.net, f"BT-116 taxable amount ({label})", fail)
        _check_amount(tax.tax, f"BT-117 tax amount ({label})", fail)
        if tax.net != line_nets[key]:
            fail(f"BT-116 taxable amount {tax.net} for {label} is not the sum of its lines' "
                 f"net amounts {line_nets[key]}")
        _check_tax_amount(tax, label, fail)
        _check_exemption(tax, label, fail)
    missing = sorted(f"{c} {r} %" for c, r in line_nets.keys() - seen)
    if missing:
        fail(f"BG-23 no tax breakdown for the lines with {', '.join(missing)}")

    for value, name in ((doc.net_total, "BT-109 net total"), (doc.tax_total, "BT-110 tax total"),
                        (doc.gross_total, "BT-112 gross total"), (doc.prepaid, "BT-113 prepaid"),
                        (doc.due, "BT-115 amount due")):
        _check_amount(value, name, fail)
    lines_net = sum((i.net for i in doc.items), Decimal(0))
    if doc.net_total != lines_net:
        fail(f"BT-109 net total {doc.net_total} is not the sum of the line net amounts "
             f"{lines_net} (BT-106, BR-CO-13)")
    taxes_sum = sum((t.tax for t in doc.taxes), Decimal(0))
    if doc.tax_total != taxes_sum:
        fail(f"BT-110 tax total {doc.tax_total} is not the sum of the breakdown tax amounts "
             f"{taxes_sum} (BR-CO-14)")
    if doc.gross_total != doc.net_total + doc.tax_total:
        fail(f"BT-112 gross total {doc.gross_total} is not net {doc.net_total} + tax "
             f"{doc.tax_total} (BR-CO-15)")
    if doc.prepaid < 0:
        fail(f"BT-113 prepaid amount {doc.prepaid} is negative")
    if doc.due != doc.gross_total - doc.prepaid:
        fail(f"BT-115 amount due {doc.due} is not gross {doc.gross_total} - prepaid "
             f"{doc.prepaid} (BR-CO-16)")
    if doc.due > 0 and not doc.payment_terms.strip() and not doc.is_credit_note:
        # BR-CO-25 would take a due date (BT-9) alone; ours always come with their sentence, which
        # says how to pay too. A credit note without terms gets the sentence saying how the amount
        # goes back (payment.py).
        fail("BT-20 payment terms are required when an amount is due (BR-CO-25)")
    if doc.paid_through_channel and not doc.is_credit_note and doc.due != 0:
        fail(f"BT-115 amount due {doc.due} on an invoice the channel collected the money for: "
             f"prepaid (BT-113) is the gross total and nothing is due")

    categories = {i.tax_category for i in doc.items}
    if "K" in categories and not doc.buyer.vat_id:
        # BR-IC-02: an intra-community supply is only tax free with both VAT ids on it.
        fail("BT-48 buyer VAT id is required for an intra-community supply (K, BR-IC-02)")
    if "AE" in categories and not doc.buyer.vat_id:
        fail("BT-48 buyer VAT id is required for reverse charge (AE, BR-AE-02)")


def _check_party(party: InvoiceParty, role: str, fail: _Fail) -> None:
    bt = {"seller": ("BT-27", "BT-40", "BT-31"), "buyer": ("BT-44", "BT-55", "BT-48"),
          "ship-to": ("BT-70", "BT-80", "")}[role]
    if not (party.company or party.name).strip():
        fail(f"{bt[0]} {role} name is empty")
    if len(party.country) != 2 or not party.country.isalpha() or not party.country.isupper():
        fail(f"{bt[1]} {role} country {party.country!r} is not an ISO 3166-1 alpha-2 code")
    if party.vat_id and bt[2]:
        prefix = party.vat_id[:2]
        # BR-CO-09: the VAT id starts with the issuing country (Greece: EL).
        if not (prefix.isalpha() and prefix.isupper()):
            fail(f"{bt[2]} {role} VAT id {party.vat_id!r} lacks its country prefix (BR-CO-09)")


def _check_item(item: InvoiceItem, fail: _Fail) -> None:
    pos = f"line {item.position}"
    for value, name in ((item.quantity, "BT-129 quantity"), (item.unit_net, "BT-146 net price"),
                        (item.tax_rate, "BT-152 rate"), (item.net, "BT-131 net amount")):
        if not isinstance(value, Decimal) or not value.is_finite():
            fail(f"{name} {pos}: {value!r} is not a decimal number")
    if item.tax_category not in _CATEGORIES:
        fail(f"BT-151 {pos}: tax category {item.tax_category!r} is not one of "
             f"{', '.join(sorted(_CATEGORIES))}")
    if item.tax_category == "S" and item.tax_rate <= 0:
        fail(f"BT-152 {pos}: standard rated (S) needs a rate above 0 (BR-S-05)")
    if item.tax_category != "S" and item.tax_rate != 0:
        fail(f"BT-152 {pos}: category {item.tax_category} needs rate 0, not {item.tax_rate}")
    if item.quantity <= 0:
        fail(f"BT-129 {pos}: quantity {item.quantity} is not positive")
    if item.unit_net < 0:
        fail(f"BT-146 {pos}: net price {item.unit_net} is negative (BR-27)")
    if _decimals(item.unit_net) > 4:
        fail(f"BT-146 {pos}: net price {item.unit_net} has more than 4 decimals")
    _check_amount(item.net, f"BT-131 {pos} net amount", fail)
    for value, name in ((item.allowance, "BT-136 allowance"),
                        (item.allowance_gross, "allowance incl. VAT")):
        _check_amount(value, f"{name} {pos}", fail)
        if value < 0:
            fail(f"{name} {pos}: {value} is negative; a discount is a positive amount taken off")
    if item.allowance_gross and not item.allowance:
        fail(f"BT-136 {pos}: a discount of {item.allowance_gross} incl. VAT without its net amount")
    # A 4-decimal unit price is exact to ±0.00005 per unit and the line net to ±0.005, so a line
    # whose net differs from quantity × price - discount by more than that was not computed from
    # them (EN 16931: BT-131 = BT-129 × BT-146 - BT-136; Peppol R120 in XRechnung checks it).
    slack = item.quantity * Decimal("0.00005") + Decimal("0.005")
    if abs(item.quantity * item.unit_net - item.allowance - item.net) > slack:
        less = f" - allowance {item.allowance}" if item.allowance else ""
        fail(f"BT-131 {pos}: net amount {item.net} is not quantity {item.quantity} × net price "
             f"{item.unit_net}{less}")
    if not item.description.strip():
        fail(f"BT-153 {pos}: item name is empty")
    if not item.unit_code.strip():
        fail(f"BT-130 {pos}: unit code is empty")


def _check_tax_amount(tax: TaxBreakdown, label: str, fail: _Fail) -> None:
    if tax.category != "S":
        if tax.tax != 0:
            fail(f"BT-117 tax amount for {label} must be 0, not {tax.tax}")
        return
    expected = (tax.net * tax.rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    # One cent of slack: a caller may round half-even, or per document rather than per rate.
    if abs(tax.tax - expected) > CENT:
        fail(f"BT-117 tax amount {tax.tax} for {label} is not taxable amount {tax.net} × "
             f"{tax.rate} % = {expected} (BR-S-09)")


def _check_exemption(tax: TaxBreakdown, label: str, fail: _Fail) -> None:
    has_exemption = bool(tax.exemption_reason.strip() or tax.exemption_code.strip())
    # K and AE get their one VATEX code when the caller gave none; E and G need the caller's.
    needs_caller = tax.category in _NEEDS_EXEMPTION and tax.category not in _DEFAULT_EXEMPTION_CODE
    if needs_caller and not has_exemption:
        fail(f"BT-120/BT-121 {label} needs an exemption reason or code "
             f"(BR-{tax.category}-10)")
    if tax.category in ("S", "Z") and has_exemption:
        fail(f"BT-120/BT-121 {label} must not carry an exemption reason or code "
             f"(BR-{tax.category}-10)")
    default = _DEFAULT_EXEMPTION_CODE.get(tax.category)
    if default and tax.exemption_code and tax.exemption_code != default:
        fail(f"BT-121 exemption code {tax.exemption_code} does not mean category "
             f"{tax.category}; expected {default}")


def _check_amount(value: Decimal, name: str, fail: _Fail) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        fail(f"{name} {value!r} is not a decimal amount")
    if _decimals(value) > 2:
        fail(f"{name} {value} has more than 2 decimals (BR-DEC)")


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 99


def _check_xrechnung(doc: InvoiceDocument) -> None:
    where = doc.number or "invoice"
    seller, buyer = doc.seller, doc.buyer
    missing = [name for value, name in (
        (seller.contact, "BT-41 seller contact name (BR-DE-5)"),
        (seller.phone, "BT-42 seller contact phone (BR-DE-6)"),
        (seller.email, "BT-43/BT-34 seller e-mail (BR-DE-7, PEPPOL-EN16931-R020)"),
        (seller.city, "BT-37 seller city (BR-DE-3)"),
        (seller.postal_code, "BT-38 seller post code (BR-DE-4)"),
        (buyer.email, "BT-49 buyer electronic address (PEPPOL-EN16931-R010)"),
        (buyer.city, "BT-52 buyer city (BR-DE-8)"),
        (buyer.postal_code, "BT-53 buyer post code (BR-DE-9)"),
    ) if not value.strip()]
    if doc.ship_to is not None:
        missing += [name for value, name in (
            (doc.ship_to.city, "BT-77 deliver-to city (BR-DE-10)"),
            (doc.ship_to.postal_code, "BT-78 deliver-to post code (BR-DE-11)"),
        ) if not value.strip()]
    if doc.due > 0 and not doc.is_credit_note and not doc.seller_iban.strip():
        missing.append("BT-84 seller IBAN for the amount due (BR-DE-1, BR-DE-23-a)")
    if missing:
        raise InputError("XRechnung needs " + "; ".join(missing), where=where)


# --- mapping ----------------------------------------------------------------------------------


def _build(doc: InvoiceDocument, *, xrechnung: bool) -> Document:
    x = Document()
    if xrechnung:
        x.context.business_parameter.id = BUSINESS_PROCESS_XRECHNUNG
        x.context.guideline_parameter.id = GUIDELINE_XRECHNUNG
    else:
        x.context.guideline_parameter.id = GUIDELINE_EN16931

    x.header.id = doc.number  # BT-1
    x.header.type_code = str(doc.type_code)  # BT-3
    x.header.issue_date_time = doc.issue_date  # BT-2
    for text in doc.notes:  # BT-22
        note = IncludedNote()
        note.content = text
        x.header.notes.add(note)

    agreement = x.trade.agreement
    buyer_reference = doc.buyer_reference or (doc.order_id if xrechnung else "")
    if buyer_reference:
        agreement.buyer_reference = buyer_reference  # BT-10
    _party(agreement.seller, doc.seller, seller=True, xrechnung=xrechnung)
    _party(agreement.buyer, doc.buyer, seller=False, xrechnung=xrechnung)
    if doc.order_id:
        agreement.buyer_order.issuer_assigned_id = doc.order_id  # BT-13

    delivery = x.trade.delivery
    ship_to = doc.ship_to
    if ship_to is None and any(i.tax_category == "K" for i in doc.items):
        # BR-IC-12: an intra-community supply names the country the goods went to; without a
        # separate delivery address they went to the buyer's.
        ship_to = doc.buyer
    if ship_to is not None:
        delivery.ship_to.name = _display_name(ship_to)  # BT-70
        _address(delivery.ship_to.address, ship_to, person_line=True)  # BG-15
    delivery.event.occurrence = doc.supply_date  # BT-72

    settlement = x.trade.settlement
    settlement.currency_code = doc.currency  # BT-5
    _payment_means(settlement, doc)
    for tax in doc.taxes:  # BG-23
        t = ApplicableTradeTax()
        t.calculated_amount = _money(tax.tax)  # BT-117
        t.type_code = "VAT"
        if tax.exemption_reason:
            t.exemption_reason = tax.exemption_reason  # BT-120
        t.basis_amount = _money(tax.net)  # BT-116
        t.category_code = tax.category  # BT-118
        code = tax.exemption_code or _DEFAULT_EXEMPTION_CODE.get(tax.category, "")
        if code:
            t.exemption_reason_code = code  # BT-121
        t.rate_applicable_percent = _rate(tax.rate)  # BT-119
        settlement.trade_tax.add(t)
    terms_text = doc.payment_terms or (refund_text(doc) if doc.is_credit_note and doc.due > 0 else "")
    if terms_text:
        terms = PaymentTerms()
        terms.description = terms_text  # BT-20
        if doc.due_date is not None and doc.due > 0 and not doc.is_credit_note:
            terms.due = doc.due_date  # BT-9
        settlement.terms.add(terms)
    totals = settlement.monetary_summation
    totals.line_total = _money(sum((i.net for i in doc.items), Decimal(0)))  # BT-106
    totals.tax_basis_total = _money(doc.net_total)  # BT-109
    totals.tax_total = (_money(doc.tax_total), doc.currency)  # BT-110 with its currency
    totals.grand_total = _money(doc.gross_total)  # BT-112
    if doc.prepaid:
        totals.prepaid_total = _money(doc.prepaid)  # BT-113
    totals.due_amount = _money(doc.due)  # BT-115
    if doc.preceding_invoice:
        settlement.invoice_referenced_document.issuer_assigned_id = doc.preceding_invoice  # BT-25
        if doc.preceding_date is not None:
            settlement.invoice_referenced_document.issue_date_time = doc.preceding_date  # BT-26

    for item in doc.items:
        x.trade.items.add(_line(item, doc.language))
    return x


def _party(target: TradeParty, party: InvoiceParty, *, seller: bool, xrechnung: bool) -> None:
    target.name = _display_name(party)  # BT-27 / BT-44
    person = party.contact if seller else (party.name if party.company else "")
    if person or (seller and (party.phone or party.email)):
        # BG-6 seller contact (XRechnung requires it whole); BG-9 buyer contact is the person
        # at the buying company.
        if person:
            target.contact.person_name = person
        if seller and party.phone:
            target.contact.telephone.number = party.phone
        if seller and party.email:
            target.contact.email.address = party.email
    _address(target.address, party, person_line=False)
    if party.email:
        target.electronic_address.uri_ID = ("EM", party.email)  # BT-34 / BT-49
    if party.vat_id:
        reg = TaxRegistration()
        reg.id = ("VA", party.vat_id)  # BT-31 / BT-48
        target.tax_registrations.add(reg)
    if seller and party.tax_number:
        reg = TaxRegistration()
        reg.id = ("FC", party.tax_number)  # BT-32 Steuernummer
        target.tax_registrations.add(reg)


def _display_name(party: InvoiceParty) -> str:
    # The legal party is the company when there is one; the person is the contact.
    return party.company or party.name


def _address(target: PostalTradeAddress, party: InvoiceParty, *, person_line: bool) -> None:
    if party.postal_code:
        target.postcode = party.postal_code
    lines = [party.street, party.extra_line]
    if person_line and party.company and party.name:
        # Deliver-to has no contact group: the person who receives the parcel goes in a line.
        lines.append(party.name)
    lines = [line for line in lines if line.strip()]
    for field, line in zip(("line_one", "line_two", "line_three"), lines):
        setattr(target, field, line)
    if party.city:
        target.city_name = party.city
    target.country_id = party.country


def _payment_means(settlement: TradeSettlement, doc: InvoiceDocument) -> None:
    payment = payment_of(doc)  # the code and who pays whom: connectors/einvoice/payment.py
    if payment is None:
        # EN 16931 allows an invoice without payment instructions; XRechnung was refused earlier.
        return
    means = PaymentMeans()
    means.type_code = payment.code  # BT-81
    if payment.text:
        means.information.add(payment.text)  # BT-82
    if payment.iban:
        means.payee_account.iban = payment.iban  # BT-84
    if payment.bic:
        means.payee_institution.bic = payment.bic  # BT-86
    settlement.payment_means.add(means)
    if payment.reference:
        # BT-83: the invoice number as remittance text lets the bank statement be matched.
        settlement.payment_reference = payment.reference


def _line(item: InvoiceItem, language: str) -> LineItem:
    li = LineItem()
    li.document.line_id = str(item.position)  # BT-126
    li.product.seller_assigned_id = item.sku  # BT-155
    li.product.name = item.description  # BT-153
    li.agreement.net.amount = _plain(item.unit_net)  # BT-146
    li.delivery.billed_quantity = (_plain(item.quantity), item.unit_code)  # BT-129, BT-130
    li.settlement.trade_tax.type_code = "VAT"
    li.settlement.trade_tax.category_code = item.tax_category  # BT-151
    li.settlement.trade_tax.rate_applicable_percent = _rate(item.tax_rate)  # BT-152
    if item.allowance:
        discount = TradeAllowanceCharge()  # BG-27
        discount.indicator = False  # an allowance, not a charge
        discount.actual_amount = _money(item.allowance)  # BT-136
        discount.reason_code = _DISCOUNT_CODE  # BT-140
        discount.reason = item.allowance_reason or _DISCOUNT_WORD.get(language, "Discount")  # BT-139
        li.settlement.allowance_charge.add(discount)
    li.settlement.monetary_summation.total_amount = _money(item.net)  # BT-131
    return li


def _money(value: Decimal) -> Decimal:
    # Formatting, not rounding: amounts were checked to have at most 2 decimals.
    return value.quantize(CENT)


def _rate(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def _plain(value: Decimal) -> Decimal:
    # str() of a Decimal may use exponent notation ("1E+1"), which xs:decimal does not accept.
    return Decimal(format(value, "f"))


def _serialize(x: Document, doc: InvoiceDocument) -> bytes:
    try:
        return x.serialize(schema="FACTUR-X_EN16931")
    except etree.XMLSyntaxError as err:
        # drafthorse validates against the XSD: a value that does not fit (an empty string where
        # a code is required) ends here.
        raise InputError(f"the e-invoice XML does not fit the EN 16931 XSD: {err}",
                         where=doc.number) from err
