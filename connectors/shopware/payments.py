"""The outbox handlers of the shop's payment messages: a payment's move (the order's latest
order_transaction takes the transition named: paid, paid_partially, remind, cancel, refund) and
an order cancelled for want of payment (the order's ``cancel``).

Each handler reads the state at the shop first, every time: a transaction or order already where
the message would move it (a send a crash left in doubt, or a person in the shop's
administration) is not moved again. The shop sends no mail of its own for these moves
(``sendMail: false``): caturactl tells the buyer (``caturactl/orders/notices.py``).
"""

from __future__ import annotations

from caturactl.core.errors import RejectedError
from connectors.shopware.client import ShopwareApi

# The transaction state each action leads to (Shopware's order_transaction.state machine).
REACHES = {"paid": "paid", "paid_partially": "paid_partially", "remind": "reminded", "cancel": "cancelled",
           "refund": "refunded"}
TRANSACTIONS = {"transactions": {"associations": {"stateMachineState": {}}}, "stateMachineState": {}}


def _order(api: ShopwareApi, number: str) -> dict:
    found = api.call("POST", "/api/search/order", {
        "limit": 1, "filter": [{"type": "equals", "field": "orderNumber", "value": number}],
        "associations": TRANSACTIONS}, f"order {number} at the shop")
    rows = found.get("data") if isinstance(found, dict) else None
    if not rows:
        raise RejectedError(f"the shop has no order {number}")
    return rows[0]


def _state(entity: dict) -> str:
    return ((entity.get("stateMachineState") or {}).get("technicalName")) or ""


def transition_payment(api: ShopwareApi, msg, attempt) -> str | None:
    """Move the order's payment at the shop by the message's action; a note instead when it is
    there already."""
    p = msg.payload
    action, number = p["action"], p["order_id"]
    if action not in REACHES:
        raise RejectedError(f"{action!r} is no payment transition caturactl sends to the shop")
    transactions = [t for t in _order(api, number).get("transactions") or [] if isinstance(t, dict)]
    if not transactions:
        raise RejectedError(f"the shop's order {number} has no payment")
    # The latest transaction is the one in force (a buyer who changes the payment method adds one).
    transaction = max(enumerate(transactions), key=lambda it: (it[1].get("createdAt") or "", it[0]))[1]
    state = _state(transaction)
    if state == REACHES[action]:
        return (f"the shop's payment of order {number} is {state} already"
                + (": the transition a crash cut off got through" if attempt.in_doubt else ""))
    attempt.sending()
    api.call("POST", f"/api/_action/order_transaction/{transaction['id']}/state/{action}", {"sendMail": False},
             f"{action} of the payment of order {number}", acts=True)
    return None


def cancel_order(api: ShopwareApi, msg, attempt) -> str | None:
    """Cancel the order at the shop; a note instead when it is cancelled there already."""
    number = msg.payload["order_id"]
    order = _order(api, number)
    if _state(order) == "cancelled":
        return (f"the shop's order {number} is cancelled already"
                + (": the cancellation a crash cut off got through" if attempt.in_doubt else ""))
    attempt.sending()
    api.call("POST", f"/api/_action/order/{order['id']}/state/cancel", {"sendMail": False},
             f"cancellation of order {number}", acts=True)
    return None
