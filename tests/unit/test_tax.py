"""VAT treatment, dated rates and the rounding rule (pure)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caturactl.config import Config
from caturactl.core.errors import ConfigError
from caturactl.core.tax import cents, rate, share_cents, split_ancillary, split_gross, treatment, vat_id_country

RATES = Config().tax.rates


def test_the_rate_follows_the_date_of_supply_including_the_2020_cut():
    assert rate(RATES, "DE", "standard", date(2020, 6, 30)) == D(19)
    assert rate(RATES, "DE", "standard", date(2020, 7, 1)) == D(16)
    assert rate(RATES, "DE", "reduced", date(2020, 12, 31)) == D(5)
    assert rate(RATES, "DE", "reduced", date(2021, 1, 1)) == D(7)
    with pytest.raises(ConfigError, match="no standard VAT rate for US on 2026-11-25"):
        rate(RATES, "US", "standard", date(2026, 11, 25))


def test_treatment_home_eu_private_eu_business_and_export():
    assert treatment("DE", "DE", "", oss=True).category == "S"
    assert treatment("DE", "FR", "", oss=False) == treatment("DE", "FR", "", oss=False)
    assert treatment("DE", "FR", "", oss=False).rate_country == "DE"  # below the OSS threshold
    assert treatment("DE", "FR", "", oss=True).rate_country == "FR"
    k = treatment("DE", "AT", "ATU12345678", oss=True)
    assert k.category == "K" and k.exemption_code == "VATEX-EU-IC" and "6a UStG" in k.note_de
    # A German VAT id on a delivery abroad is not an intra-Community supply to another state.
    assert treatment("DE", "AT", "DE123456789", oss=True).category == "S"
    assert treatment("DE", "CH", "", oss=True).category == "G"
    assert vat_id_country("EL123456789") == "GR" and vat_id_country("") == ""


def test_rounding_keeps_the_gross_and_lines_add_up():
    nets, net, tax = split_gross([D("19.99"), D("5.00"), D("0.01")], D(19))
    assert net == D("21.01") and tax == D("3.99") and sum(nets) == net
    assert net + tax == D("25.00")


@given(st.lists(st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2), min_size=1, max_size=30),
       st.sampled_from([D(19), D(7), D(16), D(5), D(20), D("5.5"), D(22), D(0)]))
def test_per_rate_figures_add_up_to_the_cent_for_any_prices(grosses, r):
    nets, net, tax = split_gross(grosses, r)
    assert sum(nets) == net and net + tax == sum(grosses)
    # EN 16931 BR-S-09 accepts the category tax within a cent of net x rate.
    assert abs(tax - cents(net * r / 100)) <= D("0.01")


def test_no_line_gets_a_negative_net_where_the_last_line_once_took_the_rest():
    # The case: 30 x 12.62 beside a 0.10 line gave the small line a net of -0.06.
    nets, net, tax = split_gross([D("12.62") * 30, D("0.10")], D(19))
    assert nets == [D("318.16"), D("0.08")] and net == D("318.24") and tax == D("60.46")
    assert all(0 <= n <= g for n, g in zip(nets, [D("378.60"), D("0.10")]))


@given(st.lists(st.decimals(min_value=D("0.00"), max_value=D("5000"), places=2), min_size=1, max_size=30),
       st.sampled_from([D(19), D(7), D(20), D("5.5"), D(22), D(21), D("25.5"), D(0)]))
def test_every_line_net_lies_between_zero_and_its_gross(grosses, r):
    nets, net, tax = split_gross(grosses, r)
    assert sum(nets) == net
    for n, g in zip(nets, grosses):
        assert D(0) <= n <= g  # so the line's tax (gross - net) is never negative either


@given(st.decimals(min_value=D("0.00"), max_value=D("999"), places=2),
       st.lists(st.decimals(min_value=D("0.00"), max_value=D("900"), places=2), min_size=1, max_size=6))
def test_shares_are_whole_cents_that_add_up_and_follow_the_weights(total, weights):
    parts = share_cents(total, weights)
    assert sum(parts) == total and all(p >= 0 and p == cents(p) for p in parts)
    w = sum(weights)
    if w:
        for p, x in zip(parts, weights):
            assert abs(p - total * x / w) < D("0.01")  # never more than a cent from the exact share


def test_shipping_takes_the_rate_of_the_goods_and_splits_over_mixed_rates():
    assert split_ancillary(D("3.99"), {D(7): D("20.00")}) == {D(7): D("3.99")}
    # goods worth 10.00 net at 7 % and 20.00 net at 19 %: a third and two thirds
    assert split_ancillary(D("3.99"), {D(7): D("10.00"), D(19): D("20.00")}) == {D(19): D("2.66"), D(7): D("1.33")}
    assert split_ancillary(D("0.01"), {D(7): D("1.00"), D(19): D("2.00")}) == {D(19): D("0.01")}
