"""The carrier matrix: which carrier products can take a delivery, what each costs, and why the
others cannot. A pure function over plain values; the shipping service stores its answer.

Checks follow reference/carriers/limits.md "Practical notes": weight, then the longest side,
then L+2W+2H (girth: sort the three sides, L longest), then the product's box limits, then the
service flags (country, express, cash on delivery, Packstation / parcel shop / PO box). Every
failed check of every product is kept as a reason, so ``carriers choose --explain`` can show a
warehouse lead exactly why DHL Kleinpaket was not an option.

Packing is deliberately simple and predictable: units are placed heaviest first into the first
parcel they fit (first-fit decreasing); a parcel's size is the largest longest side, the largest
middle side and the stacked shortest sides of its units. A unit that fits no empty parcel of a
product rules that product out. Prices are per parcel, by zone and weight band; the ranking is
cheapest first, then earliest delivery, then fewest transit days, then the product key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Mapping

from caturactl.config import CarrierConfig, LocationConfig
from caturactl.fulfilment.deadlines import BusinessCalendar
from caturactl.core.money import Money
from caturactl.ports import Parcel

PICKUP_FLAGS = {"packstation": "packstation", "postfiliale": "packstation", "parcelshop": "parcelshop",
                "po_box": "po_box"}


@dataclass(frozen=True, slots=True)
class Unit:
    """Items of one SKU in the delivery: weight per piece and sides in cm, longest first."""

    sku: str
    quantity: int
    weight_g: int | None
    sides_cm: tuple[int, int, int] | None


@dataclass(frozen=True, slots=True)
class ShipmentRequest:
    location: str  # location code
    country: str
    postal_code: str
    pickup: str | None  # packstation | postfiliale | parcelshop | po_box | None
    express: bool
    cash_on_delivery: Money | None
    units: tuple[Unit, ...]
    now: datetime  # aware


@dataclass(frozen=True, slots=True)
class Offer:
    key: str  # carrier product key in caturactl.toml
    carrier: str
    service: str
    parcels: tuple[Parcel, ...]
    price: Decimal
    zone: str
    transit_days: int
    ship_date: date
    delivery_date: date

    def as_dict(self) -> dict:
        return {"key": self.key, "carrier": self.carrier, "service": self.service, "price": str(self.price),
                "zone": self.zone, "parcels": len(self.parcels), "weight_g": sum(p.weight_g for p in self.parcels),
                "transit_days": self.transit_days, "ship_date": self.ship_date.isoformat(),
                "delivery_date": self.delivery_date.isoformat()}


@dataclass(frozen=True, slots=True)
class Rejection:
    key: str
    reasons: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"key": self.key, "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class Choice:
    offers: tuple[Offer, ...]  # eligible, best first
    rejected: tuple[Rejection, ...]

    @property
    def chosen(self) -> Offer | None:
        return self.offers[0] if self.offers else None

    def as_dict(self) -> dict:
        return {"chosen": self.chosen.key if self.chosen else None,
                "ranking": [o.as_dict() for o in self.offers],
                "rejected": [r.as_dict() for r in self.rejected]}


def zone_of(carrier: CarrierConfig, country: str) -> str:
    for zone, countries in carrier.zones.items():
        if country in countries:
            return zone
    return country


def _fits(c: CarrierConfig, sides: tuple[int, int, int]) -> str | None:
    """None when a box of ``sides`` (longest first) fits product ``c``, else the reason."""
    length, width, height = sides
    if length > c.max_length_cm:
        return f"longest side {length} cm > {c.max_length_cm} cm"
    if c.max_width_cm is not None and width > c.max_width_cm:
        return f"width {width} cm > {c.max_width_cm} cm"
    if c.max_height_cm is not None and height > c.max_height_cm:
        return f"height {height} cm > {c.max_height_cm} cm"
    if c.max_girth_cm is not None and length + 2 * width + 2 * height > c.max_girth_cm:
        return f"L+2W+2H {length + 2 * width + 2 * height} cm > {c.max_girth_cm} cm"
    if c.max_sum_cm is not None and length + width + height > c.max_sum_cm:
        return f"L+W+H {length + width + height} cm > {c.max_sum_cm} cm"
    return None


def _stack(box: tuple[int, int, int], sides: tuple[int, int, int]) -> tuple[int, int, int]:
    """The box after putting one more unit on top: widest footprint, heights added; re-sorted."""
    a, b, c = max(box[0], sides[0]), max(box[1], sides[1]), box[2] + sides[2]
    return tuple(sorted((a, b, c), reverse=True))  # type: ignore[return-value]


def pack(units: tuple[Unit, ...], c: CarrierConfig, packaging_g: int) -> tuple[tuple[Parcel, ...], str | None]:
    """Parcels for product ``c`` (first-fit decreasing by weight), or () and the reason it cannot."""
    pieces: list[tuple[int, tuple[int, int, int], str]] = []
    for u in units:
        if u.weight_g is None:
            return (), f"weight unknown for SKU {u.sku}"
        if u.sides_cm is None:
            return (), f"dimensions unknown for SKU {u.sku}"
        pieces.extend([(u.weight_g, u.sides_cm, u.sku)] * u.quantity)
    pieces.sort(key=lambda p: (-p[0], p[2]))
    limit = c.max_weight_g - packaging_g
    boxes: list[list] = []  # [weight_g, sides]
    for weight, sides, sku in pieces:
        if weight > limit:
            return (), f"SKU {sku} weighs {weight + packaging_g} g packed > {c.max_weight_g} g"
        if reason := _fits(c, sides):
            return (), f"SKU {sku}: {reason}"
        for box in boxes:
            if box[0] + weight <= limit:
                grown = _stack(box[1], sides)
                if _fits(c, grown) is None:
                    box[0] += weight
                    box[1] = grown
                    break
        else:
            if len(boxes) == c.max_parcels:
                return (), f"needs more than {c.max_parcels} parcels"
            boxes.append([weight, sides])
    return tuple(Parcel(w + packaging_g, *s) for w, s in boxes), None


def _price(c: CarrierConfig, zone: str, parcels: tuple[Parcel, ...]) -> tuple[Decimal | None, str | None]:
    bands = sorted((b for b in c.prices if b.zone == zone), key=lambda b: b.max_weight_g)
    if not bands:
        return None, f"no price for zone {zone}"
    total = Decimal(0)
    for p in parcels:
        band = next((b for b in bands if p.weight_g <= b.max_weight_g), None)
        if band is None:
            return None, f"no price for {p.weight_g} g in zone {zone}"
        total += band.price
    return total, None


def _service_reasons(req: ShipmentRequest, key: str, c: CarrierConfig, location: LocationConfig) -> list[str]:
    reasons = []
    if key not in location.carriers:
        reasons.append(f"not offered at location {req.location}")
    if req.country not in c.countries:
        reasons.append(f"does not deliver to {req.country}")
    if req.express and not c.express:
        reasons.append("no express service")
    if req.cash_on_delivery is not None:
        if not c.cod:
            reasons.append("no cash on delivery")
        elif c.cod_max is not None and req.cash_on_delivery.amount > c.cod_max:
            reasons.append(f"cash on delivery {req.cash_on_delivery.amount} > {c.cod_max}")
    if req.pickup:
        flag = PICKUP_FLAGS.get(req.pickup, req.pickup)
        if not getattr(c, flag, False):
            reasons.append(f"does not deliver to a {req.pickup.replace('_', ' ')}")
    return reasons


def choose(req: ShipmentRequest, carriers: Mapping[str, CarrierConfig], location: LocationConfig,
           calendar: BusinessCalendar) -> Choice:
    """Every product in ``carriers``: eligible ones ranked (cheapest, then earliest delivery),
    the others with every reason they were ruled out. Never raises for a business reason."""
    offers: list[Offer] = []
    rejected: list[Rejection] = []
    for key, c in carriers.items():
        reasons = _service_reasons(req, key, c, location)
        parcels, why = pack(req.units, c, location.packaging_g)
        if why:
            reasons.append(why)
        zone = zone_of(c, req.country)
        price = None
        if not reasons:  # a price only matters for a product that could take the parcel
            price, why = _price(c, zone, parcels)
            if why:
                reasons.append(why)
        if reasons:
            rejected.append(Rejection(key, tuple(reasons)))
            continue
        transit = c.transit_days_by_zone.get(zone, c.transit_days)
        ship = calendar.ship_date(req.now, c.cutoff or location.cutoff)
        offers.append(Offer(key, c.carrier, c.service, parcels, price, zone, transit, ship,
                            calendar.add_business_days(ship, transit)))
    offers.sort(key=lambda o: (o.price, o.delivery_date, o.transit_days, o.key))
    return Choice(tuple(offers), tuple(rejected))
