"""Billing: invoices and credit notes, their numbers and documents."""
