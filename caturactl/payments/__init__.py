"""Payments: what each order's buyer owes and has paid (its own lifecycle), and the bank statements
whose credits pay them."""
