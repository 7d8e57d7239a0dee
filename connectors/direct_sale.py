"""What every sales channel has in common whose buyers pay the merchant directly (the Shopware
shop, orders taken at the terminal): the channel collects no money, so there is no settlement to
reconcile and the money owed waits on receivables; it asks for no reviews; its invoices are ours
and e-mailed to the buyer, and we tell its buyers about their shipments ourselves.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from caturactl.core.errors import StateError


class DirectSaleChannel:
    """The part of a SalesChannel (caturactl/channels.py) a direct sale fixes; a subclass adds
    its orders, its messages and ``no_settlements``."""

    collects_payment = False
    requests_reviews = False
    provides_settlements = False
    fulfils_itself = ""
    clearing_account = "receivables"  # the buyer owes the merchant directly (Forderungen)
    product_columns: dict[str, str] = {}
    review_closes_after = timedelta(0)
    no_settlements: str  # why asking the channel for settlements is a StateError, in its words

    def review_window(self, order) -> tuple[datetime, datetime] | None:
        """None: the channel takes no review requests."""
        return None

    def invoice_mode(self, cfg) -> str:
        """"email": the invoice goes to the buyer."""
        return "email"

    def issues_invoices(self, cfg) -> bool:
        """False: the merchant invoices the orders (caturactl does)."""
        return False

    def tells_buyers(self, cfg) -> bool:
        """True: we mail the buyers their shipping notices."""
        return True

    def upload_to_resend(self, payload: dict) -> dict:
        """The payload unchanged: nothing is ever uploaded to the channel."""
        return dict(payload)

    def check_uploads(self, app, session) -> dict[str, int]:
        """Nothing to check: the channel takes no invoice uploads."""
        return {"checked": 0, "accepted": 0, "rejected": 0, "waiting": 0}

    def settlement_source(self, app, session):
        """Raises StateError: the buyer pays the merchant, so the channel has no settlements."""
        raise StateError(self.no_settlements)

    def summarise_settlement(self, stream, name: str, *, per_order=None, digest=None):
        """Raises StateError: the buyer pays the merchant, so the channel has no settlements."""
        raise StateError(self.no_settlements)
