"""Review requests at Amazon (Solicitations v1, productReviewAndSellerFeedback): our adapter with
the real sp_api client against the SP-API stand-in, and the stand-in's window and answers."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sp_api.api import Solicitations
from sp_api.base.exceptions import SellingApiForbiddenException

from caturactl.core.errors import RejectedError
from connectors.amazon.solicitations import AmazonReviews, not_offered
from standins.amazon import AmazonStandin, Fault
from tests.integration.test_amazon_shipments import access_token, make_api, make_standin, open_orders, shipped_order

ACTION = "productReviewAndSellerFeedback"


@pytest.fixture
def standin():
    s = make_standin()
    yield s
    s.stop()


@pytest.fixture
def api(standin):
    return make_api(standin)


@pytest.fixture
def reviews(api):
    requester = AmazonReviews(api)
    yield requester
    requester.close()


def window(order: dict) -> tuple[dt.datetime, dt.datetime]:
    """From 5 days after the earliest to 30 days after the latest delivery date (customer-contact.md §1)."""
    w = order["fulfillment"]["deliverByWindow"]
    earliest, latest = (dt.datetime.fromisoformat(w[k].replace("Z", "+00:00"))
                        for k in ("earliestDateTime", "latestDateTime"))
    return earliest + dt.timedelta(days=5), latest + dt.timedelta(days=30)


def move_to(s: AmazonStandin, when: dt.datetime) -> None:
    s.advance(when - s.now())


def calls(s: AmazonStandin) -> tuple[int, int]:
    c = s.stats()["calls"]
    return c["getSolicitationActionsForOrder"], c["createProductReviewAndSellerFeedbackSolicitation"]


def mp(order: dict) -> str:
    return order["salesChannel"]["marketplaceId"]


# --------------------------------------------------------------------------- through our adapter
def test_before_the_window_nothing_is_offered_and_nothing_is_sent(standin, reviews):
    order = shipped_order(standin)
    opens, _ = window(order)
    move_to(standin, opens - dt.timedelta(seconds=1))
    assert reviews.request_review(order["orderId"], mp(order)) is False
    assert calls(standin) == (1, 0) and standin.solicitations() == []


def test_inside_the_window_the_request_is_sent_once(standin, api, reviews):
    order = shipped_order(standin)
    opens, _ = window(order)
    move_to(standin, opens)  # the first moment counts
    assert reviews.request_review(order["orderId"], mp(order)) is True
    [sent] = standin.solicitations()
    assert (sent["order_id"], sent["marketplace_id"], sent["solicitation"]) == (order["orderId"], mp(order), ACTION)
    assert reviews.request_review(order["orderId"], mp(order)) is False  # Amazon allows one per order
    assert calls(standin) == (2, 1) and len(standin.solicitations()) == 1
    assert api.stats.calls == 3 and api.stats.retries == 0


def test_after_the_window_closed_nothing_is_offered(standin, reviews):
    order = shipped_order(standin)
    _, closes = window(order)
    move_to(standin, closes + dt.timedelta(seconds=1))
    assert reviews.request_review(order["orderId"], mp(order)) is False
    assert calls(standin) == (1, 0)


def test_an_order_not_shipped_is_not_offered_even_inside_the_window(standin, reviews):
    order = open_orders(standin)[0]
    move_to(standin, window(order)[0] + dt.timedelta(days=1))
    assert reviews.request_review(order["orderId"], mp(order)) is False
    assert calls(standin) == (1, 0)


def test_an_order_amazon_does_not_know_is_rejected(standin, reviews):
    with pytest.raises(RejectedError) as exc:
        reviews.request_review("302-0000000-0000000", "A1PA6795UKMFR9")
    assert "order not found" in str(exc.value) and "302-0000000-0000000" in str(exc.value)


def test_a_503_on_the_actions_call_is_retried(standin, api, reviews):
    order = shipped_order(standin)
    move_to(standin, window(order)[0])
    standin.add_fault(Fault(operation="getSolicitationActionsForOrder", kind="status", status=503))
    assert reviews.request_review(order["orderId"], mp(order)) is True
    assert api.stats.retries == 1 and calls(standin) == (2, 1)


def test_amazons_403_about_the_solicitation_reads_as_not_offered_and_a_denied_access_does_not(standin, api):
    order = shipped_order(standin)
    client = api.client(Solicitations, mp(order))
    # outside the window, then a second time inside it: Amazon's reported 403 answers
    with pytest.raises(SellingApiForbiddenException) as early:
        client.create_product_review_and_seller_feedback_solicitation(order["orderId"], marketplaceIds=mp(order))
    assert early.value.error[0]["code"] == "Unauthorized" and "5-30 day range" in early.value.error[0]["message"]
    move_to(standin, window(order)[0])
    client.create_product_review_and_seller_feedback_solicitation(order["orderId"], marketplaceIds=mp(order))
    with pytest.raises(SellingApiForbiddenException) as again:
        client.create_product_review_and_seller_feedback_solicitation(order["orderId"], marketplaceIds=mp(order))
    assert again.value.error[0]["message"] == "The requested solicitation is not available for this amazonOrderId."
    assert not_offered(early.value) and not_offered(again.value)
    # a bad token: the same code, but access is what is refused
    r = httpx.post(f"{standin.url}/solicitations/v1/orders/{order['orderId']}/solicitations/{ACTION}",
                   params={"marketplaceIds": mp(order)}, headers={"x-amz-access-token": "Atza|forged"})
    assert r.status_code == 403
    assert not not_offered(SellingApiForbiddenException(r.json()["errors"]))


# --------------------------------------------------------------------------- the stand-in's answers
def test_the_actions_answer_is_hal_like_amazons_sandbox(standin):
    order = shipped_order(standin)
    move_to(standin, window(order)[0])
    oid, m = order["orderId"], mp(order)
    r = httpx.get(f"{standin.url}/solicitations/v1/orders/{oid}", params={"marketplaceIds": m},
                  headers={"x-amz-access-token": access_token(standin)})
    assert r.status_code == 200 and r.headers["x-amzn-RateLimit-Limit"]
    assert r.json() == {"_links": {
        "actions": [{"href": f"/solicitations/v1/orders/{oid}/solicitations/{ACTION}?marketplaceIds={m}",
                     "name": ACTION}],
        "self": {"href": f"/solicitations/v1/orders/{oid}?marketplaceIds={m}"}}}
    sent = httpx.post(f"{standin.url}/solicitations/v1/orders/{oid}/solicitations/{ACTION}",
                      params={"marketplaceIds": m}, headers={"x-amz-access-token": access_token(standin)})
    assert sent.status_code == 201 and sent.json() == {}
    assert httpx.get(f"{standin.url}/_standin/solicitations").json()["solicitations"] == standin.solicitations()


@pytest.mark.parametrize("params, word", [
    ({}, "exactly one"),
    ({"marketplaceIds": "A1PA6795UKMFR9,A13V1IB3VIYZZH"}, "exactly one"),
    ({"marketplaceIds": "XX"}, "XX"),
    ({"marketplaceIds": "A1F83G8C2ARO7P"}, "belongs to marketplace"),
])
def test_the_standin_wants_the_orders_one_marketplace(standin, params, word):
    order = shipped_order(standin)
    r = httpx.get(f"{standin.url}/solicitations/v1/orders/{order['orderId']}", params=params,
                  headers={"x-amz-access-token": access_token(standin)})
    assert r.status_code == 400 and r.headers["x-amzn-RateLimit-Limit"]
    err = r.json()["errors"][0]
    assert err["code"] == "InvalidInput" and word in err["message"] + err["details"], err
