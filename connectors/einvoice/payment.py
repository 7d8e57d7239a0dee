"""How the money of an invoice or credit note moves: the EN 16931 payment instructions (BG-16)
and the sentence the PDF prints, decided once here so that the XML and the page say the same.

- An invoice with an amount due asks for a SEPA credit transfer (UNTDID 4461 code 58) to the
  seller's IBAN, with the invoice number as remittance text.
- An invoice paid already (the channel collected the money) asks for nothing: ZZZ ("mutually
  defined") and no bank account a buyer's system could pay into a second time.
- A credit note's money flows the other way, to the buyer, so it never names the seller's IBAN
  as the payee account (BT-84): there it would read "transfer the amount to us".
  - Paid through the channel (Amazon collected it): refunded through that channel. Code 68,
    "online payment service", is the 4461 code for money that moves through a payment service
    rather than between two bank accounts, which is what an Amazon refund is.
  - Otherwise the seller transfers the amount to the buyer. Code 30 or 58 would say so, but
    EN 16931 (BR-50, BR-61, CII-SR-470) and XRechnung (BR-DE-23-a) then require the payee's
    account, here the buyer's, which we do not know. So ZZZ, and the sentence in BT-82 says
    that the seller transfers the amount.
- An invoice paid on delivery (cash on delivery) says so with code 10, "in cash"; one we collect by
  direct debit with ZZZ and the sentence: code 59 would need the mandate and the buyer's account
  (BT-89, BT-91; BR-DE-25), which we do not keep.
XRechnung's BR-DE-1 wants BG-16 on every document; neither 10, 68 nor ZZZ is a code that BR-DE-23
(transfer), BR-DE-24 (card) or BR-DE-25 (direct debit) asks more of.

An invoice that asks for a transfer also gets an EPC QR code (GiroCode, EPC069-12) on its page:
what a banking app needs to fill in the transfer, the same values as BG-16 (``epc_qr``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import segno
from segno import helpers as segno_helpers

from caturactl.ports import InvoiceDocument

IN_CASH = "10"
SEPA_CREDIT_TRANSFER = "58"
ONLINE_PAYMENT_SERVICE = "68"
MUTUALLY_DEFINED = "ZZZ"

# The refund sentences, by language: "{channel}" is the channel the buyer paid through.
_REFUND = {
    "de": {"channel_due": "Der Betrag wird über {channel} erstattet.",
           "channel_done": "Der Betrag wurde über {channel} erstattet.",
           "transfer_due": "Wir überweisen Ihnen den Betrag.",
           "transfer_done": "Der Betrag wurde Ihnen erstattet."},
    "en": {"channel_due": "Refunded through {channel}.",
           "channel_done": "Refunded through {channel}.",
           "transfer_due": "We will transfer the amount to you.",
           "transfer_done": "The amount has been refunded to you."},
}


@dataclass(frozen=True, slots=True)
class Payment:
    """One document's payment instructions (BG-16)."""

    code: str  # BT-81, UNTDID 4461
    text: str = ""  # BT-82, and what the PDF prints about the money
    iban: str = ""  # BT-84, the payee's account
    bic: str = ""  # BT-86
    reference: str = ""  # BT-83, remittance text


def payment_of(doc: InvoiceDocument) -> Payment | None:
    """How ``doc``'s money moves; None for an invoice with an amount due and no seller IBAN
    (EN 16931 allows that; XRechnung does not, and ``cii`` refuses it there)."""
    if doc.is_credit_note:
        return Payment(ONLINE_PAYMENT_SERVICE if doc.paid_through_channel else MUTUALLY_DEFINED,
                       refund_text(doc))
    if doc.due == 0:
        return Payment(MUTUALLY_DEFINED, doc.payment_terms)
    if doc.payment_means == "cod":
        return Payment(IN_CASH, doc.payment_terms)
    if doc.payment_means == "direct_debit":
        return Payment(MUTUALLY_DEFINED, doc.payment_terms)
    if not doc.seller_iban.strip():
        return None
    return Payment(SEPA_CREDIT_TRANSFER, iban=doc.seller_iban.replace(" ", ""), bic=doc.seller_bic,
                   reference=doc.number)


def refund_text(doc: InvoiceDocument) -> str:
    """The sentence that says how a credit note's amount goes back to the buyer, in the
    document's language: through the channel, or by the seller's transfer; "is" while an amount
    is due, "was" once nothing is."""
    texts = _REFUND.get(doc.language, _REFUND["en"])
    how = "channel" if doc.paid_through_channel else "transfer"
    when = "due" if doc.due > 0 else "done"
    channel = doc.channel.strip() or ("den Verkaufskanal" if doc.language == "de" else "the sales channel")
    return texts[f"{how}_{when}"].format(channel=channel)


@dataclass(frozen=True, slots=True)
class EpcTransfer:
    """The fields of an EPC QR code (EPC069-12, version 002, SEPA credit transfer)."""

    name: str  # the payee, at most 70 characters
    iban: str
    bic: str
    amount: Decimal  # EUR
    text: str  # unstructured remittance information: the invoice number (BT-83)


# EPC069-12: amounts from EUR 0.01 to 999999999.99; the payee's name at most 70 characters.
_EPC_MAX = Decimal("999999999.99")


def epc_transfer(doc: InvoiceDocument) -> EpcTransfer | None:
    """The transfer an EPC QR code for ``doc`` asks for: an invoice in euros with an amount due
    and a SEPA credit transfer to the seller's IBAN (``payment_of``); None for any other.

    The invoice number goes into the unstructured remittance line, not the structured one: that
    is for an ISO 11649 creditor reference ("RF..."), which banking apps check and refuse."""
    payment = payment_of(doc)
    if payment is None or payment.code != SEPA_CREDIT_TRANSFER or doc.currency != "EUR":
        return None
    if not (0 < doc.due <= _EPC_MAX):
        return None
    name = (doc.seller.company or doc.seller.name).strip()[:70]
    return EpcTransfer(name=name, iban=payment.iban, bic=payment.bic.replace(" ", ""), amount=doc.due,
                       text=payment.reference[:140])


def epc_qr(transfer: EpcTransfer) -> segno.QRCode:
    """The EPC QR code (GiroCode) of ``transfer``: error correction M, UTF-8 (character set 1).
    Raises ValueError for a value the standard does not allow (segno checks the lengths)."""
    return segno_helpers.make_epc_qr(name=transfer.name, iban=transfer.iban, amount=transfer.amount,
                                     text=transfer.text, bic=transfer.bic or None, encoding="utf-8")
