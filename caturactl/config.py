"""caturactl.toml: load, validate, override from the environment, and read secrets.

Errors name the file and the key (``caturactl.toml: amazon.marketplaces[2]: ...``). Secrets
(the LWA client secret and refresh token) never come from caturactl.toml: they come from
``CATURACTL_AMAZON_CLIENT_SECRET`` / ``CATURACTL_AMAZON_REFRESH_TOKEN`` or from a secrets file
that only its owner can read.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from datetime import date
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from caturactl.core.errors import ConfigError

CONFIG_NAME = "caturactl.toml"
ENV_PREFIX = "CATURACTL_"
# CATURACTL_* variables that are not configuration values.
ENV_NOT_CONFIG = {"CATURACTL_CONFIG", "CATURACTL_DEBUG", "CATURACTL_JOBS", "CATURACTL_JOB", "CATURACTL_JOB_SLOT",
                  "CATURACTL_CLOCK"}

# Amazon's EU marketplaces (reference/amazon/README.md §6): country -> (marketplace id, name).
AMAZON_MARKETPLACES: dict[str, tuple[str, str]] = {
    "DE": ("A1PA6795UKMFR9", "Amazon.de"),
    "FR": ("A13V1IB3VIYZZH", "Amazon.fr"),
    "IT": ("APJ6JRA9NG5V4", "Amazon.it"),
    "ES": ("A1RKKUPIHCS9HS", "Amazon.es"),
    "UK": ("A1F83G8C2ARO7P", "Amazon.co.uk"),
    "NL": ("A1805IZSGTT6HS", "Amazon.nl"),
    "PL": ("A1C3SOZRARQ6R3", "Amazon.pl"),
    "SE": ("A2NODRKZP88ZB9", "Amazon.se"),
    "BE": ("AMEN7PMS3EDWL", "Amazon.com.be"),
    "IE": ("A28R8C7NBKEWEA", "Amazon.ie"),
}
_BY_ID = {mid: country for country, (mid, _) in AMAZON_MARKETPLACES.items()}
SECRET_KEYS = {"client_secret", "refresh_token"}
# The sections a secrets file may hold, and the secrets of each.
SECRET_SECTIONS = {"amazon": {"client_secret", "refresh_token"}, "shop": {"client_secret"}}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# Legal forms (Rechtsformen). Registered merchants name register court and number on invoices and
# business letters (§ 37a HGB for the e.K., § 125a HGB for OHG and KG); a capital company also its
# seat and every managing director (§ 35a GmbHG, also for the UG; § 80 AktG: the Vorstand). A
# GmbH & Co. KG names those of its general partner GmbH too (§ 125a Abs. 1 Satz 2 HGB).
CAPITAL_COMPANY_FORMS = ("GmbH", "UG (haftungsbeschränkt)", "AG", "GmbH & Co. KG")
REGISTERED_FORMS = (*CAPITAL_COMPANY_FORMS, "KG", "OHG", "e.K.")
LEGAL_FORMS = ("", *REGISTERED_FORMS, "GbR", "Einzelunternehmen")


def legal_form(value: str) -> str:
    """``value`` as LEGAL_FORMS spells it, in any case ("ug" -> "UG (haftungsbeschränkt)");
    ValueError naming the known forms."""
    known = {form.casefold(): form for form in LEGAL_FORMS}
    form = known.get(value.strip().casefold(), known.get(f"{value.strip()} (haftungsbeschränkt)".casefold()))
    if form is None:
        raise ValueError(f"unknown legal form {value!r} (known: {', '.join(f for f in LEGAL_FORMS if f)})")
    return form


class CompanyConfig(_Section):
    name: str = "My Company GmbH"
    street: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = "DE"
    vat_id: str = ""  # USt-IdNr.
    tax_number: str = ""  # Steuernummer
    email: str = ""
    phone: str = ""
    website: str = ""
    contact: str = ""  # a person for invoice questions (XRechnung wants one)
    order_mail: str = ""  # the merchant's address for a mail about each new order ("" = none)
    iban: str = ""
    bic: str = ""
    bank: str = ""
    legal_form: str = ""  # Rechtsform, one of LEGAL_FORMS ("" = not said)
    registered_office: str = ""  # Sitz der Gesellschaft; "" = the city above
    register_court: str = ""  # Registergericht, e.g. "Amtsgericht Köln"
    register_number: str = ""  # e.g. "HRB 12345"
    trade_register: str = ""  # older single field, e.g. "Amtsgericht Köln, HRB 12345"; used without register_court
    managing_directors: str = ""  # all Geschäftsführer (AG: the Vorstand), comma-separated

    @model_validator(mode="before")
    @classmethod
    def _trade_register(cls, data: Any) -> Any:
        # Readers of the older single field (trade_register) see court and number in it.
        if isinstance(data, dict) and not data.get("trade_register"):
            joined = ", ".join(str(data[k]) for k in ("register_court", "register_number") if data.get(k))
            if joined:
                data = {**data, "trade_register": joined}
        return data

    @field_validator("legal_form")
    @classmethod
    def _legal_form(cls, v: str) -> str:
        return legal_form(v)

    def legal_lines(self) -> tuple[str, ...]:
        """What invoices and business letters must say of the company beyond its name and address
        (§ 35a GmbHG, § 80 AktG, § 37a and § 125a HGB): seat, register court and number, and the
        managing directors, each one line, for what is configured."""
        lines = []
        if self.legal_form in CAPITAL_COMPANY_FORMS:
            lines.append(f"Sitz der Gesellschaft: {self.registered_office or self.city}")
        if self.register_court or self.register_number:
            lines += [x for x in (f"Registergericht: {self.register_court}" if self.register_court else "",
                                  self.register_number) if x]
        elif self.trade_register:
            lines.append(self.trade_register)
        if self.managing_directors:
            lines.append(f"{'Vorstand' if self.legal_form == 'AG' else 'Geschäftsführer'}: {self.managing_directors}")
        return tuple(lines)


class DatabaseConfig(_Section):
    url: str = "sqlite:///caturactl.db"


def _http_url(v: str) -> str:
    """``v`` without its trailing slash; ValueError when it is not an http(s) URL."""
    if not v.startswith(("https://", "http://")):
        raise ValueError(f"not an http(s) URL: {v!r}")
    return v.rstrip("/")


class _ChannelApi(_Section):
    """What a sales channel's API is reached with: the client's id and its secret (from the
    environment or the secrets file only), how far back a first import reads, and how long and
    how often a call is tried."""
    client_id: str = ""
    first_import_days: int = Field(default=7, ge=1, le=90)
    max_retries: int = Field(default=6, ge=0, le=20)
    backoff_seconds: float = Field(default=2.0, ge=0)
    backoff_max_seconds: float = Field(default=120.0, ge=0)
    timeout_seconds: float = Field(default=30.0, gt=0)
    secrets_file: str = ""
    client_secret: SecretStr | None = None  # environment or secrets file only


class AmazonConfig(_ChannelApi):
    enabled: bool = True
    endpoint: str = "https://sellingpartnerapi-eu.amazon.com"
    lwa_url: str = "https://api.amazon.com/auth/o2/token"
    seller_id: str = ""  # the merchant token (Seller Central: Account Info), the sellerId of Listings Items calls
    marketplaces: list[str] = Field(default_factory=lambda: ["DE"], validate_default=True)
    # Amazon's VAT Calculation Service issues the invoices of Amazon orders (FBA and merchant-
    # fulfilled alike): caturactl then invoices none of them and the settlement matches them as
    # Amazon-invoiced. Off: caturactl invoices every Amazon order, FBA ones once Amazon ships them.
    vcs: bool = False
    rate_scale: float = Field(default=1.0, gt=0)  # stand-ins and benchmarks only
    refresh_token: SecretStr | None = None  # environment or secrets file only

    @field_validator("marketplaces")
    @classmethod
    def _known_marketplaces(cls, values: list[str]) -> list[str]:
        ids = []
        for i, v in enumerate(values):
            key = v.strip().upper() if len(v.strip()) == 2 else v.strip()
            if key in AMAZON_MARKETPLACES:
                ids.append(AMAZON_MARKETPLACES[key][0])
            elif key in _BY_ID:
                ids.append(key)
            else:
                known = ", ".join(AMAZON_MARKETPLACES)
                raise ValueError(f"[{i}] unknown Amazon marketplace {v!r} (use a country code: {known}, or a marketplace id)")
        if not ids:
            raise ValueError("at least one marketplace is needed")
        return sorted(set(ids))

    @field_validator("endpoint", "lwa_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _http_url(v)


class ShopConfig(_ChannelApi):
    """The merchant's own Shopware 6 shop (Admin API, an integration's access key: ``client_id``
    is its id, SWIA...). The secret comes from CATURACTL_SHOP_CLIENT_SECRET or ``[shop]`` of the
    secrets file, never from here."""
    enabled: bool = False
    url: str = ""  # the shop's base URL; the Admin API is below /api
    sales_channel: str = ""  # import only this sales channel (its name or id); "" = every one
    page_size: int = Field(default=100, ge=1, le=500)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _http_url(v) if v else v


class StockConfig(_Section):
    """What the channels are told they may sell: on hand at every location, less what is reserved,
    less ``safety`` pieces kept back (per SKU in ``safety_per_sku``), never below 0."""
    safety: int = Field(default=2, ge=0, le=1_000_000)
    safety_per_sku: dict[str, int] = Field(default_factory=dict)

    @field_validator("safety_per_sku")
    @classmethod
    def _whole(cls, v: dict[str, int]) -> dict[str, int]:
        for sku, n in v.items():
            if n < 0:
                raise ValueError(f"{sku}: a safety stock is 0 or more, not {n}")
        return v

    def safety_of(self, sku: str) -> int:
        """The pieces of ``sku`` kept back from the channels."""
        return self.safety_per_sku.get(sku, self.safety)


class MatchingConfig(_Section):
    address_threshold: float = Field(default=90.0, ge=50, le=100)  # rapidfuzz score, 0..100
    name_threshold: float = Field(default=85.0, ge=50, le=100)


class TriageConfig(_Section):
    delivery_instructions: bool = True
    gift_message: bool = True
    business_tax_id: bool = True
    unknown_sku: bool = True
    pickup_incomplete: bool = True
    broken_address: bool = True
    cancel_request: bool = True
    max_line_length: int = Field(default=35, ge=10, le=200)
    ship_to_countries: list[str] = Field(
        default_factory=lambda: ["DE", "AT", "FR", "IT", "ES", "NL", "BE", "LU", "PL", "DK", "SE", "CZ"])


class DisplayConfig(_Section):
    timezone: str = "Europe/Berlin"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v


class PortalConfig(_Section):
    """The partner portal (``caturactl portal serve``; caturactl/portal/). ``public_url`` is the
    address partners open (invitation links start with it); behind a reverse proxy that ends TLS,
    list the proxy in ``trusted_proxies`` so its X-Forwarded-Proto and -For are believed."""

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    public_url: str = ""  # e.g. "https://partner.example.com"; default: http://HOST:PORT
    # "auto": Secure cookies when the request came over https (directly or per X-Forwarded-Proto
    # from a trusted proxy); "always" / "never" decide it regardless.
    secure_cookies: Literal["auto", "always", "never"] = "auto"
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    session_hours: int = Field(default=12, ge=1, le=24 * 30)
    invitation_hours: int = Field(default=72, ge=1, le=24 * 30)
    page_size: int = Field(default=25, ge=5, le=200)


class DocumentsConfig(_Section):
    """The merchant's look on the papers a dropshipper puts in the parcel (``[documents]``;
    caturactl/fulfilment/dropship/documents.py): the delivery note, the shipping label and, when
    listed in ``parcel``, the merchant's invoice. Paths are relative to caturactl.toml; the
    defaults are the invoice's own, from templates/ (its logo, DejaVu Sans)."""

    logo: str = ""  # PNG or JPEG; "" = templates/invoices/logo.png, the invoice's logo; "none" = no logo
    color: str = Field(default="#125E6E", pattern=r"^#[0-9A-Fa-f]{6}$")  # headings and rules
    font: str = ""  # a TrueType file; "" = DejaVu Sans, the invoice's font
    font_bold: str = ""  # its bold face; "" = DejaVu Sans Bold (or the regular face of ``font``)
    return_location: str = ""  # a [locations.CODE] whose address is the sender; "" = [company]
    parcel: list[Literal["delivery_note", "label", "invoice"]] = Field(
        default_factory=lambda: ["delivery_note", "label"])  # sent with each purchase order


# The document formats under carriers/ (checked here so a typo fails on load, not at 3 a.m.).
DOCUMENT_FORMATS = frozenset({"dhl_csv", "fulfiller_xml", "delivery_note_pdf", "text"})
_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class TransportConfig(_Section):
    """How files reach a location and how its answers come back (``[transports.NAME]``).

    Passwords never sit here: ``password_env`` names the environment variable that holds one.
    Remote directories are relative to the login directory unless absolute.
    """

    kind: Literal["sftp", "ftp", "ftps", "folder", "email"]
    host: str = ""
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str = ""
    password_env: str = ""  # name of the environment variable holding the password
    key_file: str = ""  # SFTP: private key file (mode 0600)
    host_key: str = ""  # SFTP: the server's public key, "ssh-ed25519 AAAA...", pinned
    known_hosts: str = ""  # SFTP: or a known_hosts file that lists the server
    ca_file: str = ""  # FTPS: certificate(s) that verify the server; empty = system CAs
    path: str = ""  # folder: the base directory
    outbound_dir: str = "in"  # where our files go (the location's inbox)
    inbound_dir: str = "out"  # where the location puts its confirmations
    archive_dir: str = "archive"  # read files are moved here (under inbound_dir unless absolute)
    error_dir: str = "error"  # rejected files are moved here
    # Where the location moves the files it has read (under outbound_dir unless absolute). An
    # upload whose name is there arrived already; after a crash mid-upload this is how we can
    # tell. Empty: the location leaves read files in its inbox or deletes them.
    read_dirs: list[str] = Field(default_factory=list)
    to: list[str] = Field(default_factory=list)  # email: recipients of the order e-mails
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError(f"not an environment variable name: {v!r}")
        return v


class MailConfig(_Section):
    """The SMTP server that sends order e-mails to locations and notices to customers."""

    host: str = ""
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    user: str = ""
    password_env: str = ""  # name of the environment variable holding the password
    ca_file: str = ""  # certificate(s) that verify the server; empty = system CAs
    from_address: str = ""
    timeout_seconds: float = Field(default=30.0, gt=0)


class PriceBand(_Section):
    zone: str  # a zone name from the carrier's zones, or a country code
    max_weight_g: int = Field(gt=0)
    price: Decimal = Field(ge=0)  # EUR per parcel


class CarrierConfig(_Section):
    """One carrier product in the matrix (``[carriers.KEY]``); figures from reference/carriers/limits.md."""

    carrier: str  # DHL | DPD | GLS | UPS | Hermes | Deutsche Post: picks the tracking rules
    service: str  # product code, e.g. V01PAK
    name: str = ""  # shown to people, e.g. "DHL Paket"
    amazon_carrier_code: str = ""  # carrierCode for confirmShipment; default: carrier
    max_weight_g: int = Field(gt=0)
    max_length_cm: int = Field(gt=0)  # longest side
    max_width_cm: int | None = Field(default=None, gt=0)  # middle side
    max_height_cm: int | None = Field(default=None, gt=0)  # shortest side
    max_girth_cm: int | None = Field(default=None, gt=0)  # L + 2W + 2H
    max_sum_cm: int | None = Field(default=None, gt=0)  # L + W + H
    countries: list[str] = Field(default_factory=lambda: ["DE"])
    express: bool = False
    cod: bool = False  # cash on delivery (Nachnahme)
    cod_max: Decimal | None = None
    packstation: bool = False  # DHL Packstation / Postfiliale
    parcelshop: bool = False
    po_box: bool = False
    cutoff: str = Field(default="", pattern=r"^$|" + _HHMM)  # pickup time at the location; "" = the location's
    transit_days: int = Field(default=1, ge=0)
    transit_days_by_zone: dict[str, int] = Field(default_factory=dict)
    zones: dict[str, list[str]] = Field(default_factory=dict)  # zone -> countries; else the country is its zone
    prices: list[PriceBand] = Field(default_factory=list)
    billing_number: str = Field(default="", pattern=r"^$|^\d{14}$")  # DHL Abrechnungsnummer
    max_parcels: int = Field(default=5, ge=1)

    @field_validator("countries")
    @classmethod
    def _countries(cls, values: list[str]) -> list[str]:
        return [_country(v, i) for i, v in enumerate(values)]


class LocationConfig(_Section):
    """A place that ships: the own warehouse, an external fulfiller, or a dropshipper that ships
    from its own stock on our purchase order (``[locations.CODE]``, kind = "dropshipper"; its
    terms are the keys below the dropshipper comment; caturactl/fulfilment/dropship/)."""

    name: str
    kind: Literal["own", "fulfiller", "dropshipper"] = "own"
    street: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = "DE"
    priority: int = 100  # lower first when several locations could ship an order whole
    stock: Literal["database", "report"] = "database"  # own stock table, or the fulfiller's stock file
    carriers: list[str] = Field(min_length=1)  # keys of [carriers.*] this location hands parcels to
    format: str = "dhl_csv"  # dhl_csv | fulfiller_xml | delivery_note_pdf | text
    documents: list[str] = Field(default_factory=list)  # further formats sent along, e.g. delivery_note_pdf
    transport: str = ""  # key of [transports.*] for delivery notes; "" only for a dropshipper on the portal
    return_transport: str = ""  # key of [transports.*] for confirmations; default: transport
    confirmation_format: Literal["confirmation_csv", "confirmation_xml"] = "confirmation_csv"
    cutoff: str = Field(default="14:00", pattern=_HHMM)  # orders routed later ship the next business day
    deadline_hours: int = Field(default=24, gt=0)  # business hours from export to the confirmation
    business_hours: str = Field(default="08:00-18:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
    holidays: str = "DE"  # country, or country-subdivision such as DE-NW, for public holidays
    timezone: str = "Europe/Berlin"
    packaging_g: int = Field(default=150, ge=0)  # box and filling added to every parcel
    # A file on the return channel larger than this is set aside unread (error folder, a ticket):
    # a confirmation or stock file of a few thousand lines is far smaller.
    max_file_mb: int = Field(default=20, ge=1, le=1024)
    # A dropshipper's terms: purchase price per SKU (a CSV file "sku;price" or an inline table),
    # days it needs before a parcel leaves, hours (its business hours) to answer a purchase order,
    # hours after which its availability feed counts as zero, the channels it may serve ([] = all),
    # and whether one order may be split between our own stock and this dropshipper.
    purchase_prices: str | dict[str, Decimal] = Field(default_factory=dict)
    lead_time_days: int = Field(default=0, ge=0, le=60)
    answer_within_hours: int = Field(default=8, gt=0, le=500)
    availability_max_age_hours: int = Field(default=24, gt=0, le=2000)
    channels: list[str] = Field(default_factory=list)
    split_with_own: bool = True
    # The dropshipper's DATEV creditor account (Kreditor, 70000-99999 with 4-digit G/L accounts:
    # reference/accounting/accounts.md §2, datev.md §3 column 7): its invoices and our purchase
    # credits are booked on it. Ask the tax advisor; "" until then (the export says so).
    creditor_account: str = Field(default="", pattern=r"^([7-9][0-9]{4})?$")
    # How a dropshipper with a transport gets its purchase orders: an openTRANS 2.1 ORDER (.xml)
    # or a CSV file, one row per line (connectors/opentrans/order_csv.py).
    order_format: Literal["opentrans", "csv"] = "opentrans"
    # A portal partner's contact, mailed once per `dropship send` run that gives it new purchase orders.
    notify_email: str = Field(default="", pattern=r"^([^@\s]+@[^@\s]+\.[^@\s]+)?$")

    @field_validator("country")
    @classmethod
    def _country(cls, v: str) -> str:
        return _country(v, None)


class ShippingConfig(_Section):
    notify_amazon_buyers: bool = False  # Amazon tells its buyers itself (reference/amazon/customer-contact.md)
    outbox_max_attempts: int = Field(default=8, ge=1, le=50)  # then the message becomes a ticket
    outbox_backoff_seconds: float = Field(default=60.0, ge=0)  # first retry; doubles per failure
    outbox_backoff_max_seconds: float = Field(default=3600.0, ge=0)


class TaxRate(_Section):
    """One VAT rate valid for supplies from ``valid_from`` to ``valid_to`` (inclusive)."""

    country: str
    kind: Literal["standard", "reduced"] = "standard"
    rate: Decimal = Field(ge=0, le=100)  # percent
    valid_from: date
    valid_to: date | None = None

    @field_validator("country")
    @classmethod
    def _cc(cls, v: str) -> str:
        return _country(v, None)


# The dated VAT rates of the 27 member states, with their sources: caturactl/vat_rates.toml (data,
# kept beside this file; a [[tax.rates]] list in caturactl.toml replaces it).
RATES_FILE = "vat_rates.toml"


@lru_cache(maxsize=1)
def default_rates() -> tuple[dict, ...]:
    """The rows of RATES_FILE (country, kind, rate, valid_from, valid_to), read once."""
    return tuple(tomllib.loads(resources.files("caturactl").joinpath(RATES_FILE).read_text(encoding="utf-8"))["rates"])


EU_COUNTRIES = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split())


class TaxConfig(_Section):
    home_country: str = "DE"  # where the merchant is established and ships from
    oss: bool = False  # over the EU distance-sales threshold: EU B2C deliveries use the destination's VAT
    rates: list[TaxRate] = Field(default_factory=lambda: [TaxRate.model_validate(r) for r in default_rates()])


class InvoiceConfig(_Section):
    enabled: bool = True
    per: Literal["order", "delivery"] = "order"  # one invoice per order, or per delivery note
    prefix: str = Field(default="RE", pattern=r"^[A-Z0-9]{1,8}$")  # numbers: RE2026-000001
    credit_prefix: str = Field(default="RK", pattern=r"^[A-Z0-9]{1,8}$")  # Rechnungskorrektur series
    width: int = Field(default=6, ge=3, le=10)
    language: Literal["auto", "de", "en"] = "auto"  # auto: German for DE/AT/CH/LI addresses
    amazon_delivery: Literal["upload", "email", "none"] = "upload"  # upload = Feeds API UPLOAD_VAT_INVOICE
    email_other: bool = True  # e-mail invoices of other channels and B2B buyers who asked
    review_requests: bool = True  # ask Amazon to request a review inside its window



# How each way of paying is handled when the channel does not collect the money (the shop):
# route_unpaid: the order is routed before the money is in; due_days: the payment is due that many
# days after the order (a purchase on account: after its invoice, the date the invoice names);
# remind / cancel: the payment is reminded, its order cancelled, when it stays unpaid
# (``[payments] reminder_after_days`` / ``cancel_after_days`` after it fell due).
# Cash on delivery is paid to the carrier at the door and reaches the merchant with the
# carrier's transfer: it is shipped at once, never reminded nor cancelled.
DEFAULT_PAYMENT_METHODS: dict[str, dict[str, Any]] = {
    "prepayment": {"route_unpaid": False, "due_days": 7, "remind": True, "cancel": True},  # Vorkasse
    "invoice": {"route_unpaid": True, "due_days": 14, "remind": True, "cancel": False},  # Rechnungskauf
    "direct_debit": {"route_unpaid": True, "due_days": 5, "remind": False, "cancel": False},  # Lastschrift
    "paypal": {"route_unpaid": True, "due_days": 1, "remind": False, "cancel": False},
    "card": {"route_unpaid": True, "due_days": 1, "remind": False, "cancel": False},
    "cod": {"route_unpaid": True, "due_days": 21, "remind": False, "cancel": False},  # Nachnahme
}


class PaymentMethodConfig(_Section):
    route_unpaid: bool = True
    due_days: int = Field(default=14, ge=0, le=365)
    remind: bool = False
    cancel: bool = False


class PaymentsConfig(_Section):
    """The payment queue of the orders whose channel does not collect the money: per method
    (``[payments.methods.<method>]``, over DEFAULT_PAYMENT_METHODS) whether the order waits for
    the money, when it is due, and whether it is reminded and cancelled; and when."""
    reminder_after_days: int = Field(default=7, ge=0, le=365)  # after the due date: a reminder
    cancel_after_days: int = Field(default=14, ge=1, le=365)  # after the due date: the order is cancelled
    methods: dict[str, PaymentMethodConfig] = Field(default_factory=lambda: {
        m: PaymentMethodConfig(**v) for m, v in DEFAULT_PAYMENT_METHODS.items()})

    @field_validator("methods", mode="before")
    @classmethod
    def _over_defaults(cls, v: Any) -> Any:
        # A method named in the file changes only the keys it names; the others keep their defaults.
        if not isinstance(v, dict):
            return v
        out: dict[str, Any] = {m: dict(d) for m, d in DEFAULT_PAYMENT_METHODS.items()}
        for m, given in v.items():
            if m not in DEFAULT_PAYMENT_METHODS:
                raise ValueError(f"unknown payment method {m!r} (known: {', '.join(DEFAULT_PAYMENT_METHODS)})")
            out[m] = {**out[m], **given} if isinstance(given, dict) else given
        return out

    @model_validator(mode="after")
    def _order_of_days(self) -> "PaymentsConfig":
        if self.cancel_after_days <= self.reminder_after_days:
            raise ValueError(f"cancel_after_days ({self.cancel_after_days}) must be after reminder_after_days "
                             f"({self.reminder_after_days}): a buyer is reminded before the order is cancelled")
        return self

    def method(self, name: str) -> PaymentMethodConfig:
        """The rules of payment method ``name``; an unknown one (not configurable) is routed at once,
        due after 14 days, never reminded nor cancelled."""
        return self.methods.get(name) or PaymentMethodConfig()

    def waiting_methods(self) -> list[str]:
        """The methods whose orders are routed only once paid."""
        return sorted(m for m, c in self.methods.items() if not c.route_unpaid)


# reference/accounting/accounts.md: defaults, not law; every account is configurable.
ACCOUNT_PRESETS: dict[str, dict[str, str]] = {
    "SKR03": {"revenue_standard": "8400", "revenue_reduced": "8300", "revenue_intra_eu": "8125",
              "revenue_export": "8120", "revenue_oss": "8320", "receivables": "1400", "amazon_clearing": "1500",
              "bank": "1200", "transit": "1360", "fees": "4760", "fees_13b": "3123", "payment_fees": "4970",
              # accounts.md §3: Ausgangsfrachten (FBA fulfilment; UNCERTAIN there) and Werbekosten.
              "fulfilment_fees": "4730", "advertising": "4600",
              # Not in accounts.md: "Versicherungsentschädigungen und Schadenersatzleistungen" of the
              # DATEV charts (SKR03 2742 / SKR04 4970, NWB Kontierungslexikon "Schadensersatz,
              # erhaltener"); Amazon's compensation for goods it lost or damaged is no fee.
              "reimbursements": "2742",
              # Dropshippers' goods: Wareneingang 19 % (accounts.md §3). The 7 % account is not in
              # accounts.md: "Wareneingang 7 % Vorsteuer" of the DATEV charts (UNCERTAIN; verify).
              "purchases": "3400", "purchases_reduced": "3300"},
    "SKR04": {"revenue_standard": "4400", "revenue_reduced": "4300", "revenue_intra_eu": "4125",
              "revenue_export": "4120", "revenue_oss": "4320", "receivables": "1200", "amazon_clearing": "1300",
              "bank": "1800", "transit": "1460", "fees": "6770", "fees_13b": "5923", "payment_fees": "6855",
              "fulfilment_fees": "6740", "advertising": "6600", "reimbursements": "4970",
              "purchases": "5400", "purchases_reduced": "5300"},
}

# Where the money of a settlement that is neither a sale, a refund nor the reserve is booked:
# "transaction-type/amount-type/amount-description" patterns (fnmatch; a pattern without "/" is
# matched against the amount-description alone) -> (purpose, § 13b). The descriptions are the ones
# reference/amazon/README.md §8 lists. Amazon's seller services (commissions, FBA, the seller
# subscription, storage, advertising) are invoiced by Amazon EU S.à r.l., Luxembourg, without VAT:
# the merchant owes the German VAT under § 13b UStG (accounts.md §3). Tried after the merchant's
# own [accounts.fee_accounts], in this order; a line no pattern matches is booked on
# ``fee_default`` under § 13b and listed, never silently without it.
DEFAULT_FEE_ACCOUNTS: dict[str, tuple[str, bool]] = {
    "*/ItemFees/Commission": ("fees", True),  # referral fee: Verkaufsprovisionen (accounts.md §3)
    "*/ItemFees/RefundCommission": ("fees", True),  # what Amazon keeps of a refunded commission
    "*/ItemFees/FBA*": ("fulfilment_fees", True),  # FBAPerUnitFulfillmentFee and Amazon's other FBA fees
    "*/ItemFees/ShippingChargeback": ("fulfilment_fees", True),  # the buyer's shipping Amazon keeps (FBA)
    # The seller plan: a selling fee like the commission (accounts.md names no account of its own).
    "other-transaction/other-transaction/Subscription Fee": ("fees", True),
    # FBA storage: part of Amazon's FBA service (accounts.md names no storage account).
    "other-transaction/other-transaction/Storage Fee": ("fulfilment_fees", True),
    "ServiceFee/Cost of Advertising/*": ("advertising", True),  # Sponsored Products (accounts.md §3)
    # Compensation for lost or damaged stock: damages, not a service, so no VAT at all.
    "other-transaction/FBA Inventory Reimbursement/*": ("reimbursements", False),
}


def _account_or_purpose(v: str) -> str:
    if not (v.isdigit() or v in ACCOUNT_PRESETS["SKR03"]):
        raise ValueError(f"{v!r} is neither an account number nor a purpose "
                         f"(known: {', '.join(sorted(ACCOUNT_PRESETS['SKR03']))})")
    return v


class FeeAccount(_Section):
    """Where one kind of settlement line is booked (``[accounts.fee_accounts]``)."""

    account: str  # a purpose ("fees", "advertising" ...) or an account number ("4761")
    reverse_charge: bool = True  # § 13b UStG: a service Amazon EU S.à r.l. (Luxembourg) invoiced
    # The BU key to book with instead of reverse_charge_tax_key, or the key of a line that is not
    # § 13b (e.g. 9, Vorsteuer 19 %, for a fee invoiced with German VAT); "" = none.
    tax_key: str = Field(default="", pattern=r"^[0-9]{0,4}$")

    @field_validator("account")
    @classmethod
    def _account(cls, v: str) -> str:
        return _account_or_purpose(v)


class AccountsConfig(_Section):
    """The chart of accounts (Kontenrahmen) and the accounts bookings use; a preset fills what is
    not set. Ask the tax advisor: these are the usual defaults (accounts.md), not law."""

    chart: Literal["SKR03", "SKR04"] = "SKR03"
    overrides: dict[str, str] = Field(default_factory=dict)  # purpose -> account, e.g. amazon_clearing = "1290"
    oss_tax_key: str = "10"  # DATEV BU key for OSS sales (country and rate in columns 40/41); 240 in newer setups
    # Settlement lines -> account, tried before DEFAULT_FEE_ACCOUNTS: "Subscription Fee" = { account = "4761" }
    fee_accounts: dict[str, FeeAccount] = Field(default_factory=dict)
    # A settlement line no pattern matches: this purpose or account, under § 13b, and listed. The
    # default is the chart's automatic § 13b account, which needs no BU key (accounts.md §3).
    fee_default: str = "fees_13b"
    # BU key for § 13b on an account without its own tax function (accounts.md §4: 94 = § 13b 19 %
    # VSt and USt; UNCERTAIN there: confirm with the tax advisor).
    reverse_charge_tax_key: str = Field(default="94", pattern=r"^[0-9]{1,4}$")
    datev_consultant: int = Field(default=0, ge=0, le=9999999)  # Beraternummer (from the tax advisor)
    datev_client: int = Field(default=0, ge=0, le=99999)  # Mandantennummer
    fiscal_year_start: str = Field(default="01-01", pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")  # MM-DD
    initials: str = Field(default="CA", max_length=2)  # Diktatkürzel on DATEV batches

    def account(self, purpose: str) -> str:
        """The account for ``purpose`` (an account number is its own account); ConfigError-worthy
        KeyError names an unknown purpose."""
        if purpose.isdigit():
            return purpose
        return self.overrides.get(purpose) or ACCOUNT_PRESETS[self.chart][purpose]

    @field_validator("fee_default")
    @classmethod
    def _fee_default(cls, v: str) -> str:
        return _account_or_purpose(v)

    @field_validator("overrides")
    @classmethod
    def _known(cls, v: dict[str, str]) -> dict[str, str]:
        known = set(ACCOUNT_PRESETS["SKR03"])
        for k, acct in v.items():
            if k not in known:
                raise ValueError(f"unknown purpose {k!r} (known: {', '.join(sorted(known))})")
            if not acct.isdigit():
                raise ValueError(f"{k}: account must be digits, not {acct!r}")
        return v


def _country(v: str, i: int | None) -> str:
    code = v.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise ValueError(f"{'' if i is None else f'[{i}] '}not an ISO country code: {v!r}")
    return code


class Config(_Section):
    company: CompanyConfig = Field(default_factory=CompanyConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    amazon: AmazonConfig = Field(default_factory=AmazonConfig)
    shop: ShopConfig = Field(default_factory=ShopConfig)
    stock: StockConfig = Field(default_factory=StockConfig)
    matching: MatchingConfig = Field(default_factory=MatchingConfig)
    triage: TriageConfig = Field(default_factory=TriageConfig)
    display: DisplayConfig = Field(default_factory=DisplayConfig)
    shipping: ShippingConfig = Field(default_factory=ShippingConfig)
    tax: TaxConfig = Field(default_factory=TaxConfig)
    invoices: InvoiceConfig = Field(default_factory=InvoiceConfig)
    payments: PaymentsConfig = Field(default_factory=PaymentsConfig)
    accounts: AccountsConfig = Field(default_factory=AccountsConfig)
    mail: MailConfig = Field(default_factory=MailConfig)
    transports: dict[str, TransportConfig] = Field(default_factory=dict)
    carriers: dict[str, CarrierConfig] = Field(default_factory=dict)
    locations: dict[str, LocationConfig] = Field(default_factory=dict)
    portal: PortalConfig = Field(default_factory=PortalConfig)
    documents: DocumentsConfig = Field(default_factory=DocumentsConfig)
    path: Path | None = Field(default=None, exclude=True)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.display.timezone)

    @model_validator(mode="after")
    def _references(self) -> "Config":
        # Errors raised here name the key by "locations.CODE.key: ..." in their message.
        for code, loc in self.locations.items():
            for i, key in enumerate(loc.carriers):
                if key not in self.carriers:
                    raise ValueError(f"locations.{code}.carriers[{i}]: no [carriers.{key}] section")
            for field in ("transport", "return_transport"):
                name = getattr(loc, field)
                if name and name not in self.transports:
                    raise ValueError(f"locations.{code}.{field}: no [transports.{name}] section")
            if not loc.transport and loc.kind != "dropshipper":
                raise ValueError(f"locations.{code}.transport: needed (only a dropshipper may work on the portal alone)")
            for i, fmt in enumerate([loc.format, *loc.documents]):
                if fmt not in DOCUMENT_FORMATS:
                    at = "format" if i == 0 else f"documents[{i - 1}]"
                    raise ValueError(f"locations.{code}.{at}: unknown format {fmt!r} "
                                     f"(known: {', '.join(sorted(DOCUMENT_FORMATS))})")
            # A dropshipper on the portal alone (no transport) has no return channel.
            back = loc.return_transport or loc.transport
            if back and self.transports[back].kind == "email":
                raise ValueError(f"locations.{code}: e-mail cannot be a return channel; set return_transport")
            try:
                ZoneInfo(loc.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"locations.{code}.timezone: unknown time zone {loc.timezone!r}") from None
        if self.documents.return_location and self.documents.return_location not in self.locations:
            raise ValueError(f"documents.return_location: no [locations.{self.documents.return_location}] section")
        for name, t in self.transports.items():
            if t.kind == "email" and not (self.mail.host and self.mail.from_address and t.to):
                raise ValueError(f"transports.{name}: an e-mail transport needs [mail] host and "
                                 "from_address, and 'to' recipients")
            if t.kind in ("sftp", "ftp", "ftps") and not t.host:
                raise ValueError(f"transports.{name}.host: needed for {t.kind}")
            if t.kind == "folder" and not t.path:
                raise ValueError(f"transports.{name}.path: needed for a folder transport")
        return self

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()


def find_config(explicit: str | os.PathLike | None = None) -> Path:
    """The config file: ``explicit``, else $CATURACTL_CONFIG, else ./caturactl.toml; raises ConfigError."""
    candidate = explicit or os.environ.get(ENV_PREFIX + "CONFIG") or CONFIG_NAME
    path = Path(candidate).expanduser()
    if not path.is_file():
        raise ConfigError(f"no configuration file at {path} (run 'caturactl init' or pass --config)")
    return path.resolve()


def load(path: str | os.PathLike | None = None, *, environ: dict[str, str] | None = None) -> Config:
    """Read, override and validate the configuration; raises ConfigError naming file and key."""
    cfg_path = find_config(path)
    env = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=cfg_path.name) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", where=str(cfg_path)) from None
    for section, values in raw.items():
        if isinstance(values, dict):
            for key in SECRET_KEYS & set(values):
                raise ConfigError(
                    "secrets do not belong in caturactl.toml in clear; set "
                    f"{ENV_PREFIX}{section.upper()}_{key.upper()} or use {section}.secrets_file (mode 0600)",
                    where=f"{cfg_path.name}: {section}.{key}")
    for where in _clear_passwords(raw):
        raise ConfigError("passwords do not belong in caturactl.toml; name an environment variable with "
                          "password_env instead", where=f"{cfg_path.name}: {where}")
    _apply_env(raw, env)
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        raise ConfigError(msg, where=f"{cfg_path.name}: {loc}") from None
    cfg.path = cfg_path
    _resolve_sqlite_path(cfg)
    _read_secrets_file(cfg, env)
    return cfg


def _clear_passwords(raw: Any, path: str = "") -> Iterator[str]:
    """Dotted keys of any 'password' value, at any depth (transports, mail)."""
    if isinstance(raw, dict):
        for k, v in raw.items():
            here = f"{path}.{k}" if path else k
            if k.lower() in ("password", "passwd", "pass"):
                yield here
            yield from _clear_passwords(v, here)


def _apply_env(raw: dict[str, Any], env: dict[str, str]) -> None:
    sections = Config.model_fields
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_NOT_CONFIG:
            continue
        rest = name[len(ENV_PREFIX):].lower()
        for section, field in sections.items():
            if section == "path" or not rest.startswith(section + "_"):
                continue
            key = rest[len(section) + 1:]
            model = field.annotation
            if key not in model.model_fields:
                raise ConfigError(f"{name} names no key {section}.{key}", where="environment")
            is_list = "list" in str(model.model_fields[key].annotation)
            raw.setdefault(section, {})[key] = [v.strip() for v in value.split(",")] if is_list else value
            break
        else:
            raise ConfigError(f"{name} names no configuration section", where="environment")


def _resolve_sqlite_path(cfg: Config) -> None:
    url = cfg.database.url
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://" and ":memory:" not in url:
        cfg.database.url = prefix + str((cfg.base_dir / url[len(prefix):]).resolve())


def _read_secrets_file(cfg: Config, env: dict[str, str]) -> None:
    for section, keys in SECRET_SECTIONS.items():
        _read_section_secrets(cfg, section, keys)


def _read_section_secrets(cfg: Config, name: str, keys: set[str]) -> None:
    part = getattr(cfg, name)
    if not part.secrets_file:
        return
    path = Path(part.secrets_file).expanduser()
    if not path.is_absolute():
        path = cfg.base_dir / path
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read secrets file {path}: {exc.strerror}", where=f"{name}.secrets_file") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"secrets file {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                          f"run: chmod 600 {path}", where=f"{name}.secrets_file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"secrets file is not readable TOML: {exc}", where=str(path)) from None
    section = data.get(name, {})
    unknown = set(section) - keys
    if unknown or set(data) - set(SECRET_SECTIONS):
        raise ConfigError(f"unknown keys in secrets file: {sorted(unknown or set(data) - set(SECRET_SECTIONS))}",
                          where=str(path))
    for key in keys:
        # The environment wins over the file, so an operator can override one value.
        if key in section and getattr(part, key) is None:
            setattr(part, key, SecretStr(str(section[key])))
