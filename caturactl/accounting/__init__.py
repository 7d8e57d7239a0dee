"""Accounting: channel settlements, bookings and the accountant's export."""
