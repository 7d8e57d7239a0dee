"""The carrier matrix and the business calendar: pure rules, no database."""

from __future__ import annotations

import tomllib
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from caturactl.fulfilment.carrier_matrix import ShipmentRequest, Unit, choose, pack
from caturactl.config import Config, LocationConfig
from caturactl.fulfilment.deadlines import BusinessCalendar
from caturactl.core.money import Money

TEMPLATE = Path(__file__).resolve().parents[2] / "templates" / "config" / "caturactl.toml"
CARRIERS = Config.model_validate(tomllib.loads(TEMPLATE.read_text(encoding="utf-8"))).carriers
ALL = list(CARRIERS)
WH = LocationConfig(name="Lager", carriers=ALL, transport="t", cutoff="14:00", packaging_g=150)
CAL = BusinessCalendar("DE-NW", "08:00-18:00", "Europe/Berlin")
# Wednesday 2026-11-25 10:00 Berlin (09:00 UTC): before the cut-off on a business day.
MORNING = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)

SHIRT = Unit("TEE", 1, 250, (30, 20, 3))
BOOK = Unit("BOOK", 1, 900, (24, 17, 4))
KETTLE = Unit("KETTLE", 1, 1800, (30, 22, 22))
ANVIL = Unit("ANVIL", 1, 25000, (40, 30, 30))
POLE = Unit("POLE", 1, 3000, (150, 10, 10))


def req(*units, country="DE", pickup=None, express=False, cod=None, now=MORNING) -> ShipmentRequest:
    return ShipmentRequest("WH", country, "50667", pickup, express, cod, tuple(units), now)


def reasons(choice, key):
    return next(r.reasons for r in choice.rejected if r.key == key)


def test_a_small_light_item_goes_cheapest_and_every_other_product_says_why_not():
    c = choose(req(SHIRT), CARRIERS, WH, CAL)
    assert c.chosen.key == "dhl_kleinpaket" and c.chosen.price == Decimal("3.99")
    assert [o.key for o in c.offers] == ["dhl_kleinpaket", "dpd_classic", "dhl_paket", "gls_business", "ups_express"]
    assert reasons(c, "dhl_international") == ("does not deliver to DE",)
    # Every configured product is either ranked or rejected, never silently dropped.
    assert {o.key for o in c.offers} | {r.key for r in c.rejected} == set(ALL)


def test_weight_and_size_limits_are_named_with_figures():
    c = choose(req(KETTLE), CARRIERS, WH, CAL)
    assert reasons(c, "dhl_kleinpaket") == ("SKU KETTLE weighs 1950 g packed > 1000 g",)
    c = choose(req(POLE), CARRIERS, WH, CAL)
    assert "SKU POLE: longest side 150 cm > 120 cm" in reasons(c, "dhl_paket")
    # DPD (175 cm) and GLS (200 cm) take it; GLS's 5 kg band is cheaper than DPD's 31.5 kg band.
    assert [o.key for o in c.offers][:2] == ["gls_business", "dpd_classic"]


def test_girth_is_length_plus_twice_width_plus_twice_height_of_the_sorted_sides():
    box = Unit("BOX", 1, 5000, (60, 55, 50))  # L+2W+2H = 60 + 110 + 100 = 270 -> fits 300
    assert choose(req(box), CARRIERS, WH, CAL).chosen is not None
    fat = Unit("FAT", 1, 5000, (60, 60, 60))  # 60 + 120 + 120 = 300 -> still fits
    assert "dhl_paket" in [o.key for o in choose(req(fat), CARRIERS, WH, CAL).offers]
    fatter = Unit("FATTER", 1, 5000, (61, 60, 60))  # 301
    assert any("L+2W+2H 301 cm > 300 cm" in r for r in reasons(choose(req(fatter), CARRIERS, WH, CAL), "dhl_paket"))


def test_heavy_orders_are_packed_into_several_parcels_and_priced_per_parcel():
    two_anvils = Unit("ANVIL", 2, 25000, (40, 30, 30))
    parcels, why = pack((two_anvils,), CARRIERS["dhl_paket"], 150)
    assert why is None and [p.weight_g for p in parcels] == [25150, 25150]
    c = choose(req(two_anvils), CARRIERS, WH, CAL)
    dhl = next(o for o in c.offers if o.key == "dhl_paket")
    assert len(dhl.parcels) == 2 and dhl.price == Decimal("47.98")
    # Shirts stack on the smallest side: 20 shirts of 3 cm make one compact parcel.
    parcels, why = pack((Unit("TEE", 20, 250, (30, 20, 3)),), CARRIERS["dhl_paket"], 150)
    assert why is None and len(parcels) == 1 and parcels[0].weight_g == 5150
    assert parcels[0].length_cm * parcels[0].width_cm * parcels[0].height_cm >= 20 * 30 * 20 * 3


def test_packstation_express_and_cash_on_delivery_rule_out_products():
    c = choose(req(SHIRT, pickup="packstation"), CARRIERS, WH, CAL)
    assert {o.carrier for o in c.offers} == {"DHL"}
    assert reasons(c, "dpd_classic") == ("does not deliver to a packstation",)
    c = choose(req(SHIRT, express=True), CARRIERS, WH, CAL)
    assert [o.key for o in c.offers] == ["ups_express"]
    c = choose(req(SHIRT, cod=Money(Decimal("3000"), "EUR")), CARRIERS, WH, CAL)
    assert [o.key for o in c.offers] == ["dhl_paket"]
    assert "cash on delivery 3000 > 2500" in reasons(c, "dpd_classic")


def test_a_product_not_offered_at_the_location_is_rejected_for_that_reason():
    loc = WH.model_copy(update={"carriers": ["dpd_classic"]})
    c = choose(req(SHIRT), CARRIERS, loc, CAL)
    assert [o.key for o in c.offers] == ["dpd_classic"]
    assert "not offered at location WH" in reasons(c, "dhl_kleinpaket")


def test_unknown_weight_or_size_rules_everything_out_with_the_sku_named():
    c = choose(req(Unit("X1", 1, None, (1, 1, 1))), CARRIERS, WH, CAL)
    assert c.chosen is None and all("weight unknown for SKU X1" in r.reasons for r in c.rejected
                                    if r.key != "dhl_international")


def test_abroad_uses_the_zone_price_and_transit():
    c = choose(req(BOOK, country="AT"), CARRIERS, WH, CAL)
    assert c.chosen.key == "gls_business" and c.chosen.zone == "AT" and c.chosen.transit_days == 2
    dpd = next(o for o in c.offers if o.key == "dpd_classic")
    assert dpd.zone == "EU" and dpd.price == Decimal("14.90")


def test_ship_date_respects_the_cut_off_weekends_and_holidays():
    assert CAL.ship_date(MORNING, "14:00") == date(2026, 11, 25)
    late = datetime(2026, 11, 25, 14, 30, tzinfo=timezone.utc)  # 15:30 Berlin
    assert CAL.ship_date(late, "14:00") == date(2026, 11, 26)
    christmas_eve = datetime(2026, 12, 24, 16, 0, tzinfo=timezone.utc)  # Thursday, after cut-off
    assert CAL.ship_date(christmas_eve, "14:00") == date(2026, 12, 28)  # 25th, 26th holidays, then weekend
    c = choose(req(SHIRT, now=christmas_eve), CARRIERS, WH, CAL)
    assert c.chosen.ship_date == date(2026, 12, 28) and c.chosen.delivery_date == date(2026, 12, 30)


def test_deadlines_count_business_hours_only():
    friday_evening = datetime(2026, 11, 27, 16, 0, tzinfo=timezone.utc)  # 17:00 Berlin, 1 h before closing
    assert CAL.add_business_hours(friday_evening, 4) == datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc)
    night = datetime(2026, 11, 25, 22, 0, tzinfo=timezone.utc)  # 23:00: counts from the next opening
    assert CAL.add_business_hours(night, 2) == datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
    # Good Friday and Easter Monday 2026 are holidays in every German state.
    maundy = datetime(2026, 4, 2, 15, 0, tzinfo=timezone.utc)  # Thursday 17:00 CEST
    assert CAL.add_business_hours(maundy, 2) == datetime(2026, 4, 7, 7, 0, tzinfo=timezone.utc)
    # Corpus Christi (4 June 2026) is a holiday in NW but not in Berlin.
    wed = datetime(2026, 6, 3, 15, 0, tzinfo=timezone.utc)
    assert CAL.add_business_hours(wed, 2).date() == date(2026, 6, 5)
    assert BusinessCalendar("DE-BE").add_business_hours(wed, 2).date() == date(2026, 6, 4)


@settings(max_examples=200, deadline=None)
@given(units=st.lists(st.tuples(st.integers(1, 4), st.integers(50, 12000), st.integers(1, 80), st.integers(1, 50),
                                st.integers(1, 40)), min_size=1, max_size=5))
def test_packing_never_breaks_a_limit_and_keeps_every_unit(units):
    us = tuple(Unit(f"S{i}", q, w, tuple(sorted((a, b, c), reverse=True))) for i, (q, w, a, b, c) in enumerate(units))
    for key in ("dhl_paket", "dpd_classic", "dhl_kleinpaket"):
        carrier = CARRIERS[key]
        parcels, why = pack(us, carrier, 150)
        if why:
            continue
        assert sum(p.weight_g - 150 for p in parcels) == sum(u.quantity * u.weight_g for u in us)
        for p in parcels:
            assert p.weight_g <= carrier.max_weight_g and p.length_cm <= carrier.max_length_cm
            assert p.length_cm >= p.width_cm >= p.height_cm
            if carrier.max_girth_cm:
                assert p.length_cm + 2 * p.width_cm + 2 * p.height_cm <= carrier.max_girth_cm
