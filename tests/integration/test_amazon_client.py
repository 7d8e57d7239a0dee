"""The SP-API client side: our token bucket, rate budgets across runs, and the order parser."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from caturactl import channels
from caturactl.core.address import Address
from connectors.amazon.client import CUSHION_SECONDS, TokenBucket
from connectors.amazon.orders import Malformed, parse_order

DATA = Path(__file__).resolve().parents[1] / "data"


class Clock:
    """A clock the bucket reads and sleeps on, so the test is exact and instant."""

    def __init__(self):
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_bucket_allows_the_burst_then_one_call_per_refill():
    clock = Clock()
    bucket = TokenBucket(0.5, 3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        bucket.acquire()
    # The burst goes at once, but for the cushion before its last token (latency may leave
    # Amazon's bucket a little behind ours).
    assert sum(clock.slept) <= CUSHION_SECONDS + 1e-9
    clock.slept.clear()
    bucket.acquire()
    bucket.acquire()
    assert [round(x, 9) for x in clock.slept] == [2.0, 2.0]  # then exactly one interval per call
    bucket.drain()
    clock.now += 10
    assert bucket.tokens == 3  # refills up to the burst, never beyond


def test_a_drained_bucket_waits_for_a_full_token():
    clock = Clock()
    bucket = TokenBucket(2.0, 10, clock=clock, sleep=clock.sleep)
    bucket.drain()  # Amazon said 429: believe it
    assert bucket.tokens == 0
    bucket.acquire()
    assert clock.slept and clock.slept[0] >= 0.5


@pytest.mark.slow
def test_import_keeps_to_amazons_rate_and_gets_no_429(workspace, standin, tmp_path):
    """25 pages at the (scaled) published rate: 20 at once, 5 paced; Amazon never refuses."""
    from standins.amazon import AmazonStandin
    big = AmazonStandin(orders=2500, seed=5, day="2026-11-24", rate_scale=1000.0).start()
    try:
        workspace.standin = big
        workspace.write_config()
        workspace.load_catalogue()
        r = workspace.run("import", "amazon", "--json")
        summary = json.loads(r.out)
        assert r.code == 0 and summary["pages"] == 25 and summary["new"] == len(big.visible_orders())
        assert big.stats()["throttled"] == 0 and summary["throttled"] == 0
        # What this run left of Amazon's burst is remembered, and the next client starts from it
        # (plus the refill since) rather than from a full burst that Amazon has not refilled.
        from sqlalchemy import select

        from caturactl.core.cursors import RateBudget
        app = workspace.app()
        with app.session() as s:
            left = s.get(RateBudget, "searchOrders")
            # (how much is left depends on how long storing took: the scaled bucket refills fast)
            assert left is not None and 0 <= left.tokens <= 20
            assert datetime.now(timezone.utc) - left.at < timedelta(minutes=1)
            assert s.scalars(select(RateBudget.operation)).all() == ["searchOrders"]
            left.tokens, left.at = 0.0, datetime.now(timezone.utc) - timedelta(seconds=1)
            s.commit()
            mp, _ = channels.get("amazon").order_source(app, s)
            tokens = mp.api.bucket("searchOrders").tokens
            since = (datetime.now(timezone.utc) - left.at).total_seconds()
            # 0 tokens a second (or, on a busy machine, a little more) ago at 0.0056/s x 1000 =
            # 5.6/s: the refill since then, not a full burst of 20
            assert 5.0 < tokens <= 5.6 * since + 0.1 and tokens < 20 and since < 3
    finally:
        big.stop()


def _sample_order() -> dict:
    return json.loads((DATA / "orders_2026_searchOrders_response.json").read_text())["orders"][0]


def test_amazons_own_example_parses():
    o = parse_order(_sample_order())
    assert o.external_id == "202-7654321-1098765" and o.status == "SHIPPED" and o.lines[0].quantity == 1
    assert o.address == Address(name="Sarah Thompson", line1="45 Oak Avenue", line2="Flat 2A",
                                postal_code="SW1A 1AA", city="London", state="England", country="GB",
                                phone="+44 20 7946 0958", address_type="RESIDENTIAL")
    assert str(o.total) == "34.99 GBP"


def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


PATHS = list(_paths(_sample_order()))
JUNK = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5), st.booleans(),
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), JUNK), min_size=1, max_size=4))
def test_any_malformed_field_is_named_never_a_crash(changes):
    order = _sample_order()
    for path, value in changes:
        target = order
        try:
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = copy.deepcopy(value)
        except (KeyError, IndexError, TypeError):
            continue
    try:
        parse_order(order)
    except Malformed as exc:
        assert exc.where.startswith("order") and exc.reason
