"""Dropshipping: purchase orders to partners that ship from their own stock to our buyers, their
answers, parcels and availability feeds (issue 18)."""
