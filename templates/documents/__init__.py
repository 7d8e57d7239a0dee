"""The layouts of the documents a dropshipper puts on and in the parcel (carriers/label_pdf.py)."""
