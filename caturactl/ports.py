"""The small interfaces services need from the outside world, and the plain values crossing them.

Services import only this module, never an adapter; ``caturactl.app`` wires adapters in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Callable, Iterator, Protocol

from caturactl.core.address import Address
from caturactl.core.money import Money


@dataclass(frozen=True, slots=True)
class TaxRegistration:
    entity_type: str  # BUYER | MERCHANT | MARKETPLACE
    number: str
    kind: str = ""  # VAT | BUSINESS | ...
    legal_name: str = ""


@dataclass(frozen=True, slots=True)
class MarketplaceLine:
    line_id: str  # Amazon orderItemId
    sku: str
    listing_id: str  # the channel's id of the product listing
    title: str
    quantity: int
    quantity_shipped: int
    unit_price: Money | None
    total: Money | None  # what the buyer paid for the line, everything in (gross), None while hidden
    tax: Money | None  # the channel's own VAT figure for the line (informational)
    shipping: Money | None  # shipping charged with the line, gross, before a shipping discount
    gift_message: str = ""
    cancel_requested: str = ""  # the buyer's cancel reason, "" when none
    gift_wrap: Money | None = None  # gross
    cod_fee: Money | None = None  # cash-on-delivery fee, gross
    item_discount: Money | None = None  # promotion taken off the goods, gross, positive
    shipping_discount: Money | None = None  # promotion taken off the shipping, gross, positive
    promotion_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MarketplaceOrder:
    """One order as the marketplace reports it, already parsed and checked by the adapter."""

    channel: str  # "amazon"
    external_id: str  # Amazon orderId (3-7-7)
    marketplace_id: str
    marketplace_name: str
    created_at: datetime  # UTC
    updated_at: datetime  # UTC
    status: str  # PENDING | UNSHIPPED | PARTIALLY_SHIPPED | SHIPPED | CANCELLED | ...
    fulfilled_by: str  # MERCHANT | AMAZON
    service_level: str
    programs: tuple[str, ...]
    buyer_email: str
    buyer_name: str
    buyer_company: str
    purchase_order: str
    address: Address | None
    delivery_instructions: str
    total: Money | None
    lines: tuple[MarketplaceLine, ...]
    tax_registrations: tuple[TaxRegistration, ...] = ()
    business: bool = False  # a business buyer's order (the channel's B2B programme)
    ship_by: datetime | None = None
    deliver_by: datetime | None = None  # latest promised delivery (deliverByWindow.latestDateTime)
    deliver_from: datetime | None = None  # earliest (deliverByWindow.earliestDateTime)
    # How the buyer pays the merchant (caturactl.payments METHODS: prepayment, invoice, paypal, card,
    # cod); "" when the channel collects the money itself. The state is the channel's own word.
    payment_method: str = ""
    payment_state: str = ""
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_business(self) -> bool:
        return self.business

    @property
    def buyer_tax_ids(self) -> tuple[str, ...]:
        return tuple(t.number for t in self.tax_registrations if t.entity_type == "BUYER" and t.number)


@dataclass(frozen=True, slots=True)
class BrokenOrder:
    """An order the adapter could not parse: recorded with a ticket, never silently dropped."""

    external_id: str
    where: str  # the field path, e.g. "orderItems[1].quantityOrdered"
    reason: str
    raw: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class OrderPage:
    """One page of changed orders and the cursor state that resumes after it."""

    orders: tuple[MarketplaceOrder, ...]
    broken: tuple[BrokenOrder, ...]
    next_token: str | None  # None on the last page
    window_end: datetime | None  # the upper bound the marketplace applied (lastUpdatedBefore)


@dataclass(frozen=True, slots=True)
class CallStats:
    calls: int = 0
    throttled: int = 0  # 429s received
    retries: int = 0
    waited_seconds: float = 0.0  # waiting for the rate limit and backing off


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """What to ask the marketplace for: orders updated in [updated_after, now-2min)."""

    updated_after: datetime
    marketplace_ids: tuple[str, ...]
    resume_token: str | None = None


class Marketplace(Protocol):
    """A sales channel we import orders from."""

    name: str

    def changed_orders(self, query: OrderQuery) -> Iterator[OrderPage]:
        """Pages of orders updated since ``query.updated_after``; raises RemoteError/ThrottledError."""
        ...

    def call_stats(self) -> CallStats:
        """What talking to the marketplace cost so far in this process."""
        ...

    def rate_budgets(self) -> dict[str, tuple[float, datetime]]:
        """Per operation, what is left of the remote rate limit and when, for the next process."""
        ...


# --- fulfilment: documents, confirmations, transports ----------------------------------------


@dataclass(frozen=True, slots=True)
class Parcel:
    """One box as the carrier matrix packed it (or the location reported it)."""

    weight_g: int
    length_cm: int  # the longest side
    width_cm: int
    height_cm: int  # the shortest side


@dataclass(frozen=True, slots=True)
class ShipmentLine:
    line_no: int  # 1-based within the delivery
    sku: str
    title: str
    quantity: int
    unit_price: Money | None  # gross, as the buyer paid it; None when the channel hid it
    ean: str = ""
    channel_line_id: str = ""  # Amazon orderItemId


@dataclass(frozen=True, slots=True)
class ShipmentDocument:
    """Everything a carrier or fulfiller format needs to render one delivery note."""

    delivery_id: str  # our delivery note number, e.g. "L000123"; the key of every confirmation
    order_id: str  # the channel's order id
    channel: str  # "amazon"
    sales_channel: str  # "Amazon.de"
    customer_number: str  # "K000042"
    ordered_at: datetime  # UTC
    created_at: datetime  # UTC, when the delivery note was made
    ship_date: date  # the day the matrix plans to hand it to the carrier
    carrier: str  # "DHL", "DPD", "GLS", "UPS", "Hermes", "Deutsche Post"
    service: str  # carrier product code, e.g. "V01PAK"
    express: bool
    cash_on_delivery: Money | None
    ship_to: Address
    email: str  # buyer e-mail (for Amazon an anonymised relay address)
    sender: Address  # the shipping location, printed as sender
    lines: tuple[ShipmentLine, ...]
    parcels: tuple[Parcel, ...]
    billing_number: str = ""  # DHL Abrechnungsnummer (14 digits) for the service
    postnummer: str = ""  # DHL PostNummer for Packstation / Postfiliale
    note: str = ""  # printed for the packer (delivery instructions, gift note)

    @property
    def weight_g(self) -> int:
        return sum(p.weight_g for p in self.parcels)


@dataclass(frozen=True, slots=True)
class RenderedFile:
    name: str  # deterministic: the same delivery renders to the same name
    content: bytes
    media_type: str  # "text/csv", "application/xml", "application/pdf", "text/plain"


class DocumentFormat(Protocol):
    """Renders one delivery note into the file a carrier or fulfiller expects."""

    name: str  # "dhl_csv", "fulfiller_xml", "delivery_note_pdf", "text"

    def render(self, doc: ShipmentDocument) -> RenderedFile:
        """The file for ``doc``; raises InputError naming the field a value does not fit."""
        ...


@dataclass(frozen=True, slots=True)
class ConfirmedLine:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A location's report that (part of) one delivery left the building."""

    delivery_id: str  # as the location wrote it; checked against "L" + digits by the service
    carrier: str  # as the location wrote it, e.g. "DHL"
    service: str
    tracking_numbers: tuple[str, ...]  # one per parcel, normalised (no spaces, upper case)
    shipped_at: datetime  # UTC, in the years 2000..2100
    weights_g: tuple[int | None, ...] = ()  # per parcel when reported, 1 g .. 1000 kg
    lines: tuple[ConfirmedLine, ...] = ()  # empty: everything still open on the delivery shipped
    where: str = ""  # "SHP_20251103_001.csv:2" for messages
    order_id: str = ""  # the channel's order id when the file names it ("" when it does not)


class ConfirmationReader(Protocol):
    """Reads a confirmation file from a location's return channel, all or nothing."""

    name: str  # "confirmation_csv", "confirmation_xml"

    def read(self, file_name: str, content: bytes, tz: tzinfo) -> list[Confirmation]:
        """Every confirmation in the file; raises InputError(where="FILE:LINE:FIELD") on the
        first bad value, so a broken file is rejected whole. ``tz`` applies to times without offset."""
        ...


class Transport(Protocol):
    """One way to hand files to a location and to read its answers (SFTP, FTP/FTPS, folder, e-mail).

    Names are plain file names: a name with a path separator, "..", or an absolute path is
    refused with InputError. Errors talking to the server raise RemoteError.
    """

    name: str

    def send(self, file: RenderedFile, *, before_commit: Callable[[], None] | None = None) -> bool:
        """Upload under a temporary name, then rename; False (and nothing sent) when a file of
        that name is already there (or in a folder the location moves read files to), so a
        resend after a crash does not deliver twice. ``before_commit`` is called right before
        the step that makes the file visible (the rename; for e-mail, the message)."""
        ...

    def incoming(self) -> list[str]:
        """Names of the files waiting on the return channel, oldest first; temp names excluded."""
        ...

    def fetch(self, name: str, *, max_bytes: int | None = None) -> bytes:
        """The content of ``name``. Raises NotFoundError when it is no longer there, InputError
        when this one file cannot be read (an unsafe name, no permission, more than ``max_bytes``:
        refused from the size the server reports before reading where it can, else once reading
        passes the limit), RemoteError when the channel itself fails."""
        ...

    def move_aside(self, name: str, folder: str) -> None:
        """Move a read file into ``folder`` ("archive" or "error") on the remote side; never delete."""
        ...

    def close(self) -> None:
        ...


@dataclass(frozen=True, slots=True)
class MailMessage:
    to: tuple[str, ...]
    subject: str
    body: str  # plain text
    attachments: tuple[RenderedFile, ...] = ()
    message_id: str = ""  # deterministic (from the outbox key), so a receiver can drop a duplicate
    reply_to: str = ""


class Mailer(Protocol):
    def send(self, message: MailMessage, *, before_data: Callable[[], None] | None = None) -> None:
        """Hand the message to the SMTP server; RemoteError when it cannot be reached (retry),
        RejectedError when it refuses the message or a recipient (5xx). ``before_data`` is
        called once connected and logged in, right before the message goes out."""
        ...


@dataclass(frozen=True, slots=True)
class PackageConfirmation:
    """One parcel confirmed as shipped at the channel (Amazon v0 confirmShipment packageDetail)."""

    order_id: str  # the channel's order id
    marketplace_id: str
    package_reference: int  # positive, unique within the order
    carrier_code: str  # Amazon carrierCode, e.g. "DHL"
    carrier_name: str  # needed when carrier_code is "Other"
    shipping_method: str  # e.g. "V01PAK"
    tracking_number: str
    shipped_at: datetime  # UTC
    items: tuple[tuple[str, int], ...]  # (channel line id = orderItemId, quantity)


class ShipmentConfirmer(Protocol):
    """Tells a sales channel that a parcel left (Amazon: confirmShipment)."""

    def confirm_shipment(self, package: PackageConfirmation) -> None:
        """Raises RejectedError when the channel refuses the data (400), ThrottledError /
        RemoteError when it cannot be reached now (retry later)."""
        ...

    def confirmed(self, order_id: str, marketplace_id: str, package_reference: int) -> bool:
        """Whether the channel's order already shows the parcel (after a crash mid-confirm)."""
        ...


# --- invoicing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvoiceParty:
    """Seller, buyer or ship-to as printed and as EN 16931 wants it (BG-4, BG-7, BG-13)."""

    name: str  # person or company name (BT-27 / BT-44)
    street: str
    postal_code: str
    city: str
    country: str  # ISO 3166-1 alpha-2
    company: str = ""  # when ``name`` is a person at a company
    extra_line: str = ""  # c/o, building, Packstation ...
    vat_id: str = ""  # USt-IdNr. (BT-31 / BT-48)
    tax_number: str = ""  # Steuernummer (BT-32), seller only
    email: str = ""  # electronic address / contact
    phone: str = ""
    contact: str = ""  # seller contact person (BG-6), needed by XRechnung


@dataclass(frozen=True, slots=True)
class InvoiceItem:
    position: int
    sku: str
    description: str
    quantity: Decimal  # positive; a credit note also carries positive quantities (type 381)
    unit_net: Decimal  # net price per unit, up to 4 decimals (BT-146)
    net: Decimal  # line net amount, 2 decimals (BT-131) = the rounding rule's result
    tax_category: str  # UNCL5305: S standard, K intra-EU, AE reverse charge, Z zero, E exempt
    tax_rate: Decimal  # percent, e.g. Decimal("19"); 0 for K/AE/E
    unit_code: str = "H87"  # UN/ECE rec 20: piece
    gross: Decimal | None = None  # what the buyer paid for the line; lets credit notes add up exactly
    # A discount on this line (a promotion): BG-27 line allowance. ``allowance`` is its net amount
    # (BT-136, >= 0), ``allowance_gross`` what the buyer saw taken off (VAT included, for the PDF),
    # ``allowance_reason`` its text (BT-139). Then ``net`` = ``unit_net`` x ``quantity`` - ``allowance``
    # (up to the unit price's 4 decimals) and ``gross`` is after the discount.
    allowance: Decimal = Decimal(0)
    allowance_gross: Decimal = Decimal(0)
    allowance_reason: str = ""


@dataclass(frozen=True, slots=True)
class TaxBreakdown:
    """One VAT category and rate of the invoice (BG-23)."""

    category: str
    rate: Decimal
    net: Decimal  # taxable amount (BT-116)
    tax: Decimal  # tax amount (BT-117)
    exemption_reason: str = ""  # BT-120, e.g. "Steuerschuldnerschaft des Leistungsempfängers"
    exemption_code: str = ""  # BT-121 (VATEX), e.g. "VATEX-EU-AE", "VATEX-EU-IC"


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    """Everything an invoice PDF and its EN 16931 XML need, already computed and rounded."""

    number: str  # BT-1
    type_code: int  # 380 invoice, 381 credit note (BT-3)
    issue_date: date  # BT-2
    supply_date: date  # date of supply (Leistungsdatum, BT-72)
    currency: str  # BT-5
    seller: InvoiceParty
    buyer: InvoiceParty
    ship_to: InvoiceParty | None
    items: tuple[InvoiceItem, ...]
    taxes: tuple[TaxBreakdown, ...]
    net_total: Decimal  # BT-109 (sum of line nets; no allowances/charges in this version)
    tax_total: Decimal  # BT-110
    gross_total: Decimal  # BT-112
    prepaid: Decimal  # BT-113: paid already (Amazon collected the money)
    due: Decimal  # BT-115
    order_id: str  # the channel's order id (BT-13 purchase order reference)
    order_date: date
    channel: str  # "Amazon.de"
    customer_number: str  # "K000042"
    delivery_ids: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # legal notes printed and put in BT-22 (reverse charge, OSS, ...)
    payment_terms: str = ""  # BT-20, e.g. "Bezahlt über Amazon."
    seller_iban: str = ""
    seller_bic: str = ""
    seller_bank: str = ""
    preceding_invoice: str = ""  # BT-25, for a credit note
    preceding_date: date | None = None  # BT-26
    buyer_reference: str = ""  # BT-10 (XRechnung: Leitweg-ID or the order id)
    language: str = "de"  # "de" or "en"
    footer: tuple[str, ...] = ()  # the company's legal data (register court, managing directors)
    tax_country: str = ""  # whose VAT rates apply ("" when tax-free); differs from home under OSS
    # The sales channel collected the buyer's money (Amazon): an invoice is paid already, and a
    # credit note's money goes back through that channel, not by a transfer from the seller's IBAN.
    paid_through_channel: bool = False
    due_date: date | None = None  # BT-9, when an amount is to be transferred (caturactl/billing/terms.py)
    # How an amount due is paid: "transfer" (the seller's IBAN, the EPC QR code), "cod", "direct_debit";
    # "" on documents stored before it, which asked for a transfer when something was due.
    payment_means: str = ""

    @property
    def is_credit_note(self) -> bool:
        return self.type_code == 381


class InvoiceRenderer(Protocol):
    """Turns an invoice into the hybrid PDF (PDF/A-3 with the CII XML inside) and plain XML."""

    def pdf(self, doc: InvoiceDocument) -> RenderedFile:
        """The PDF/A-3 invoice with factur-x.xml (EN 16931 profile) embedded; raises InputError."""
        ...

    def xml(self, doc: InvoiceDocument, flavour: str = "en16931") -> RenderedFile:
        """The CII XML alone: "en16931" (Factur-X EN 16931) or "xrechnung" (XRechnung 3.0 CII)."""
        ...

    def check(self, doc: InvoiceDocument) -> None:
        """Raises the InputError rendering ``doc`` would, without rendering it."""
        ...


class InvoiceUploader(Protocol):
    """Hands an invoice PDF to a marketplace (Amazon: Feeds API, UPLOAD_VAT_INVOICE)."""

    def upload_invoice(self, order_id: str, marketplace_id: str, pdf: bytes, metadata: dict[str, str], *,
                       before_submit: Callable[[], None] | None = None) -> str:
        """Upload and submit; returns the feed id. ThrottledError when the channel's rate says
        later (do not wait minutes), RejectedError when it refuses the data. ``before_submit``
        is called right before the call that queues the invoice (createFeed)."""
        ...

    def uploads_since(self, created_since: datetime) -> list[tuple[str, datetime]]:
        """(feed id, created) of every invoice feed queued at or after ``created_since``."""
        ...


class ReviewRequester(Protocol):
    """Asks the channel to request a product review and seller feedback (Amazon Solicitations)."""

    def request_review(self, order_id: str, marketplace_id: str, *,
                       before_send: Callable[[], None] | None = None) -> bool:
        """True when the request was sent; False when the channel does not offer it for this order
        (outside the window, already sent). ThrottledError / RemoteError otherwise.
        ``before_send`` is called once the channel offers it, right before the request."""
        ...


# --- accounting -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One double-entry booking (Buchungssatz): ``amount`` moves from ``credit`` to ``debit``."""

    date: date  # Belegdatum
    document: str  # Belegfeld 1: invoice or credit-note number, settlement id
    text: str  # Buchungstext
    debit: str  # Soll account
    credit: str  # Haben account
    amount: Decimal  # positive, 2 decimals
    tax_key: str = ""  # DATEV BU-Schlüssel, only on accounts without automatic tax
    country: str = ""  # EU country for OSS keys (DATEV column "EU-Land u. UStID")
    vat_id: str = ""  # buyer VAT id for intra-Community supplies
    rate: Decimal | None = None  # VAT rate the entry carries, for OSS keys
    order_id: str = ""


# --- bank statements ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BankEntry:
    """One booked movement on the merchant's account (Umsatz), as the statement gives it; one
    transaction of a batch entry (Sammelbuchung) is an entry of its own."""

    where: str  # file:line (MT940) or file:line:XML path (CAMT), for messages
    entry_ref: str  # the bank's reference of the movement, unique within the statement
    booking_date: date  # Buchungstag
    amount: Decimal  # signed: + money in (credit), - money out (debit); to the cent
    currency: str
    debtor_name: str = ""  # who paid (for a returned direct debit: whose debit came back)
    debtor_iban: str = ""
    remittance: str = ""  # Verwendungszweck: unstructured text and any structured creditor reference
    end_to_end_id: str = ""  # the payer's reference (EREF), "" when not provided
    returned: bool = False  # a returned direct debit (Rücklastschrift) or a reversed credit
    return_reason: str = ""  # the bank's reason code of a return (ISO AM04, MD06, or DK's ?34 key)
    bank_code: str = ""  # the bank's code of the movement (MT940 GVC, CAMT Domn/Fmly/SubFmly)

    @property
    def is_credit(self) -> bool:
        return self.amount > 0


@dataclass(frozen=True, slots=True)
class BankStatementData:
    """One account statement (Kontoauszug) read from a file, every booked entry in it."""

    identity: str  # what makes it the same statement in another file (see connectors/bank/)
    format: str  # camt.053.001.08 | mt940
    account: str  # IBAN, or "BLZ/account" as MT940 :25: gives it
    statement_id: str  # CAMT Stmt/Id, MT940 :20: + :28C:
    currency: str
    opening: Decimal | None
    closing: Decimal | None
    entries: tuple[BankEntry, ...]


class StatementReader(Protocol):
    """Reads a bank statement file (CAMT.053 or MT940) whole: every statement in it, or
    InputError naming file, line (or XML path) and field; nothing half-read."""

    def __call__(self, name: str, data: bytes) -> list[BankStatementData]: ...
