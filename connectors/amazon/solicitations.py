"""Asking Amazon to request a review: Solicitations API v1, ``productReviewAndSellerFeedback``.

Why this API and not an e-mail: Amazon sends its own fixed template, so the request cannot
break the communication rules, and it uses up the order's one allowed review request
(reference/amazon/customer-contact.md §1, §4).

We follow Amazon's recommended flow (customer-contact.md §1, "Solicit feedback for an order"):
ask getSolicitationActionsForOrder first and send only when ``productReviewAndSellerFeedback``
is offered. Outside the window (5 days after the earliest until 30 days after the latest
delivery date) or once sent, Amazon does not offer it; a POST then would only earn a 403.
That 403 can still happen when the window closes, or another tool sends, between our two calls;
Amazon answers it with code ``Unauthorized`` and a message about the solicitation
(amzn/selling-partner-api-models issue #19, amzn/selling-partner-api-docs issue #121), which we
read as "not offered" rather than as lost access. Remembering what was sent, so that the request
is not made twice, is the caller's part (step 4 of the flow).
"""

from __future__ import annotations

from typing import Any, Callable

from sp_api.api import Solicitations
from sp_api.base import ApiResponse
from sp_api.base.exceptions import (SellingApiBadRequestException, SellingApiForbiddenException,
                                    SellingApiNotFoundException)

from caturactl.core.errors import RejectedError
from connectors.amazon.client import SpApi, amazon_says

ACTION = "productReviewAndSellerFeedback"


def offered(response: ApiResponse) -> bool:
    """Whether getSolicitationActionsForOrder lists productReviewAndSellerFeedback in HAL
    ``_links.actions``; raises ValueError when the answer has no such list (malformed)."""
    links = response.payload.get("_links") if isinstance(response.payload, dict) else None
    actions = links.get("actions") if isinstance(links, dict) else None
    if not isinstance(actions, list):
        raise ValueError(f"getSolicitationActionsForOrder answered without _links.actions: {response.payload!r}")
    return any(isinstance(a, dict) and a.get("name") == ACTION for a in actions)


def not_offered(exc: SellingApiForbiddenException) -> bool:
    """Whether a 403 is Amazon saying the solicitation is not available for this order (sent
    already, outside the window), not that our access was denied."""
    for err in exc.error if isinstance(exc.error, list) else []:
        message = str(err.get("message") or "").lower() if isinstance(err, dict) else ""
        if "solicitation" in message or "review" in message:
            return True
    return False


class AmazonReviews:
    """The ``ReviewRequester`` port over Solicitations v1."""

    def __init__(self, api: SpApi):
        self.api = api
        self._clients: dict[str, Any] = {}

    def _client(self, marketplace_id: str) -> Any:
        client = self._clients.get(marketplace_id)
        if client is None:
            client = self._clients[marketplace_id] = self.api.client(Solicitations, marketplace_id)
            self.api.login(client)  # the token exchange must not eat into the first call's timeout
        return client

    def request_review(self, order_id: str, marketplace_id: str, *,
                       before_send: Callable[[], None] | None = None) -> bool:
        """Have Amazon send its review and feedback request for the order: True when sent, False
        when Amazon does not offer it now (outside the window, sent before, not shipped); then
        nothing is sent. Raises RejectedError for an order or marketplace Amazon does not know,
        ThrottledError / RemoteError when Amazon cannot be reached now. ``before_send`` is
        called once Amazon offers the request, right before it is made."""
        client = self._client(marketplace_id)
        where = f"amazon order {order_id}"

        def refused(exc: SellingApiBadRequestException | SellingApiNotFoundException) -> RejectedError:
            if isinstance(exc, SellingApiNotFoundException):
                return RejectedError("order not found at Amazon", where=where)
            return RejectedError(f"Amazon refused the review request: {amazon_says(exc)}", where=where)

        def actions() -> ApiResponse:
            try:
                return client.get_solicitation_actions_for_order(order_id, marketplaceIds=marketplace_id)
            except (SellingApiBadRequestException, SellingApiNotFoundException) as exc:
                raise refused(exc) from None

        if not self.api.call("getSolicitationActionsForOrder", actions, offered,
                             f"getSolicitationActionsForOrder {order_id}"):
            return False
        if before_send is not None:
            before_send()

        def send() -> ApiResponse | None:
            try:
                return client.create_product_review_and_seller_feedback_solicitation(
                    order_id, marketplaceIds=marketplace_id)
            except SellingApiForbiddenException as exc:
                if not_offered(exc):
                    return None  # the window closed or someone sent it since we asked
                raise  # lost access: SpApi.call reports it
            except (SellingApiBadRequestException, SellingApiNotFoundException) as exc:
                raise refused(exc) from None

        return self.api.call("createProductReviewAndSellerFeedbackSolicitation", send,
                             lambda response: response is not None, f"review request for {order_id}", acts=True)

    def close(self) -> None:
        """Close the HTTP connections of the clients made so far."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
