"""EN 16931 invoices: a PDF/A-3 a person reads, with the CII XML a machine reads embedded in it.

``pdf`` draws the visible invoice, ``cii`` writes the XML, ``hybrid`` joins the two (Factur-X).
"""
