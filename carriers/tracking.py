"""Carrier tracking numbers: normalise, check, link to the carrier's tracking page, and make test numbers.

A tracking number comes from a fulfiller's confirmation or a person's keyboard and ends up in an
e-mail to the buyer and in Amazon's confirmShipment. A typo there sends the buyer to a stranger's
parcel, so every number is checked against the formats and check digits of the carrier recorded on
the delivery before it is stored. Facts (regexes, check-digit rules, URL templates, sample numbers)
come from reference/carriers/tracking.md; rules marked (u) there are uncertain and are applied
as pattern checks only, except the DHL 18-digit SSCC form, which carries a GS1 check digit.

Which rule applies is decided by the carrier name only, never guessed from the number: a bare
12-digit number can be DHL or GLS, a 14-digit one DPD or Hermes (tracking.md "Ambiguity warning").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

from caturactl.core.errors import InputError

__all__ = ["normalise", "validate", "tracking_url", "make_number", "known_carriers"]


def normalise(number: str) -> str:
    """``number`` without any whitespace and in upper case; never raises."""
    # Labels print numbers in groups ("0034 0434 1234 ...") and people copy them that way;
    # DPD prints its check character in lower case (tracking.md, DPD).
    return "".join(number.split()).upper()


# --- check-digit rules (all from reference/carriers/tracking.md) ------------------------------


def _gs1_mod10(body: str) -> str:
    """GS1 mod 10: weights 3 and 1, 3 on the digit next to the check digit."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def _identcode_mod10(body: str) -> str:
    """Deutsche Post Identcode (DHL 12 digits): weights 4 and 9 from the left."""
    total = sum(int(d) * (4 if i % 2 == 0 else 9) for i, d in enumerate(body))
    return str((10 - total % 10) % 10)


def _gls_mod10(body: str) -> str:
    """GLS parcel number: weights 3 and 1 from the left, plus one (GLS Uni-Box TechDoku ch. 3.2.1)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(body)) + 1
    return str((10 - total % 10) % 10)


def _awb_mod7(body: str) -> str:
    """DHL Express air waybill: the first nine digits modulo 7."""
    return str(int(body) % 7)


_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)


def _s10_mod11(serial: str) -> str:
    """UPU S10 check digit over the 8 serial digits."""
    r = sum(int(d) * w for d, w in zip(serial, _S10_WEIGHTS)) % 11
    # The mapping is fixed by the standard: r=0 -> 5, r=1 -> 0, else 11-r.
    return "5" if r == 0 else "0" if r == 1 else str(11 - r)


def _dpd_mod37_36(body: str) -> str:
    """ISO 7064 MOD 37,36 check character of a DPD parcel number (DPD Parcel Label Specification)."""
    cd = 36
    for ch in body:
        cd += int(ch, 36)  # 0-9, then A=10 ... Z=35
        if cd > 36:
            cd -= 36
        cd *= 2
        if cd > 36:
            cd -= 37
    cd = 37 - cd
    if cd == 36:
        cd = 0
    return "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[cd]


def _ups_mod10(body: str) -> str:
    """UPS 1Z check digit over the 15 characters after "1Z" (letters map to (ord-63) mod 10)."""
    total = 0
    for i, ch in enumerate(body):
        v = int(ch) if ch.isdigit() else (ord(ch) - 63) % 10
        total += v * 2 if i % 2 == 1 else v
    return str((10 - total % 10) % 10)


# --- formats per carrier --------------------------------------------------------------------


@dataclass(frozen=True)
class _Format:
    """One number format: its regex and, when the carrier publishes one, how to find the check."""

    label: str  # shown in messages: what a valid number of this kind looks like
    pattern: re.Pattern[str]
    check: Callable[[str], tuple[str, str]] | None = None  # number -> (expected, found)
    what: str = "check digit"


def _last(rule: Callable[[str], str]) -> Callable[[str], tuple[str, str]]:
    """A check whose character is the last one, computed over all the others."""
    return lambda n: (rule(n[:-1]), n[-1])


_IDENTCODE = _Format("12 digits (Identcode)", re.compile(r"\d{12}"), _last(_identcode_mod10))
_NVE_20 = _Format("20 digits starting 00 (NVE/SSCC)", re.compile(r"00\d{18}"), _last(_gs1_mod10))
# The 18-digit form is marked (u) in tracking.md; it is an SSCC, so its GS1 check digit is certain.
_SSCC_18 = _Format("18 digits starting 3 (SSCC)", re.compile(r"3\d{17}"), _last(_gs1_mod10))
_JJD = _Format("J + 2-3 letters + 9-20 digits (JJD...)", re.compile(r"J[A-Z]{2,3}\d{9,20}"))  # no public check
_S10 = _Format("S10 like RR123456785DE", re.compile(r"[A-Z]{2}\d{9}[A-Z]{2}"),
               lambda n: (_s10_mod11(n[2:10]), n[10]))
_AWB = _Format("10 digits (air waybill)", re.compile(r"\d{10}"), _last(_awb_mod7))
_DPD = _Format("14 digits, optionally + check character", re.compile(r"\d{14}[0-9A-Z]?"),
               # Only a 15th character is checked; bare 14 digits carry no check (tracking.md, DPD trap).
               lambda n: (_dpd_mod37_36(n[:14]), n[14]) if len(n) == 15 else ("", ""),
               what="check character")
_GLS_12 = _Format("12 digits", re.compile(r"\d{12}"), _last(_gls_mod10))
_GLS_11 = _Format("11 digits (without check digit)", re.compile(r"\d{11}"))  # "also circulates"
_GLS_TRACK_ID = _Format("8-character Track-ID", re.compile(r"[A-Z0-9]{8}"))
# Hermes: tracking.md recommends pattern only; the GS1 digit is verified on one example only.
_HERMES = _Format("14 digits or H + 18-20 digits", re.compile(r"\d{14}|H\d{18,20}"))
_UPS = _Format("1Z + 16 characters", re.compile(r"1Z[0-9A-Z]{15}\d"), lambda n: (_ups_mod10(n[2:17]), n[17]))
_ANY = _Format("6-35 letters or digits", re.compile(r"[A-Z0-9]{6,35}"))

# Canonical names; keys are the lower-case spelling looked up.
_CARRIERS: dict[str, tuple[str, tuple[_Format, ...]]] = {
    # Deutsche Post S10 numbers (Warenpost International, Einschreiben) also travel under DHL.
    "dhl": ("DHL", (_IDENTCODE, _NVE_20, _SSCC_18, _JJD, _S10)),
    "deutsche post": ("Deutsche Post", (_S10,)),
    "dhl express": ("DHL Express", (_AWB,)),
    "dpd": ("DPD", (_DPD,)),
    "gls": ("GLS", (_GLS_12, _GLS_11, _GLS_TRACK_ID)),
    "hermes": ("Hermes", (_HERMES,)),
    "ups": ("UPS", (_UPS,)),
}


def known_carriers() -> tuple[str, ...]:
    """The carrier names with their own number rules, canonically spelt ("DHL", "DPD", ...)."""
    return tuple(name for name, _ in _CARRIERS.values())


def validate(carrier: str, number: str) -> str:
    """The normalised ``number`` if it is a valid tracking number of ``carrier`` (case-insensitive);
    raises InputError naming carrier, number and why. Unknown carriers get a plain pattern check."""
    n = normalise(number)
    name, formats = _CARRIERS.get(carrier.strip().lower(), (carrier.strip() or "unknown carrier", (_ANY,)))
    if not n:
        raise InputError(f"{name} tracking number is empty")
    for fmt in formats:
        if not fmt.pattern.fullmatch(n):
            continue
        if fmt.check is not None:
            expected, found = fmt.check(n)
            if expected != found:
                raise InputError(f"{name} tracking number {n}: {fmt.what} should be {expected}")
        return n
    kinds = "; ".join(f.label for f in formats)
    raise InputError(f"{name} tracking number {n}: not a {name} number (expected {kinds})")


# Templates from tracking.md "Public tracking URL templates"; {n} is replaced by the encoded number.
_URLS = {
    "dhl": "https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html?piececode={n}",
    # DHL's page also tracks Deutsche Post S10 numbers (marked (u) in tracking.md); there is no
    # separate Deutsche Post template there.
    "deutsche post": "https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html?piececode={n}",
    "dhl express": "https://www.dhl.com/de-de/home/tracking/tracking-express.html?submit=1&tracking-id={n}",
    "dpd": "https://tracking.dpd.de/status/de_DE/parcel/{n}",  # the number goes in the path
    "gls": "https://gls-group.eu/DE/de/paketverfolgung?match={n}",
    "hermes": "https://www.myhermes.de/empfangen/sendungsverfolgung/sendungsinformation/#{n}",  # a fragment
    "ups": "https://www.ups.com/track?loc=de_DE&tracknum={n}",
}


def tracking_url(carrier: str, number: str) -> str | None:
    """The carrier's public tracking page for ``number`` (normalised, URL-encoded), or None when
    the carrier has no known page. Does not validate the number."""
    template = _URLS.get(carrier.strip().lower())
    if template is None:
        return None
    # quote() encodes a space as %20, never "+" (tracking.md); nothing is left "safe" so that a
    # stray "/" or "#" cannot change the path or cut the query.
    return template.replace("{n}", quote(normalise(number), safe=""))


# --- synthetic numbers for stand-ins and benchmarks ---------------------------------------------

# carrier -> (prefix, serial digits, function making the full number from prefix+serial)
_MAKERS: dict[str, tuple[str, int, Callable[[str], str]]] = {
    # "00" + SSCC with the GS1 company prefix used by the sample number 00340434123456789012.
    "dhl": ("003404341", 10, lambda b: b + _gs1_mod10(b)),
    "deutsche post": ("RR", 8, lambda b: b + _s10_mod11(b[2:]) + "DE"),
    "dhl express": ("", 9, lambda b: b + _awb_mod7(b)),
    # Depot 0120 (Hamburg, tracking.md); 14 digits without the optional check character, the
    # way confirmations usually carry them.
    "dpd": ("0120", 10, lambda b: b),
    # Depot 20, product 55 (standard parcel) as in the sample 205512345673.
    "gls": ("2055", 7, lambda b: b + _gls_mod10(b)),
    # Older 14-digit form with its GS1 digit, as in the sample 09133131530724.
    "hermes": ("091", 10, lambda b: b + _gs1_mod10(b)),
    # The shipper account and service of the classic sample 1Z999AA10123456784 ("999AA1", "01").
    "ups": ("1Z999AA101", 7, lambda b: b + _ups_mod10(b[2:])),
}


def make_number(carrier: str, serial: int) -> str:
    """A valid, synthetic tracking number of ``carrier`` that is unique per ``serial``; raises
    ValueError for a carrier without a number rule or a serial outside 0..10**digits-1."""
    key = carrier.strip().lower()
    if key not in _MAKERS:
        raise ValueError(f"no number maker for carrier {carrier!r} (known: {', '.join(known_carriers())})")
    prefix, digits, finish = _MAKERS[key]
    if not 0 <= serial < 10**digits:
        raise ValueError(f"serial {serial} out of range for {carrier} (0..{10**digits - 1})")
    return finish(f"{prefix}{serial:0{digits}d}")
