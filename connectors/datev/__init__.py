"""DATEV, the tax advisor's bookkeeping: what caturactl hands over is files in DATEV's "EXTF" CSV
format (reference/accounting/datev.md), written by ``extf``; nothing here talks to DATEV itself.
"""
