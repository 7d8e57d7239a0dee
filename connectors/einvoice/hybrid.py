"""The hybrid invoice: the EN 16931 XML embedded into the PDF/A-3 a person reads (Factur-X).

Why a module of its own: the visible PDF (``pdf.py``) and the XML (``cii.py``) are made apart;
joining them is factur-x's job. It attaches the XML as ``factur-x.xml`` (AFRelationship Data)
and writes the Factur-X XMP schema (``fx:ConformanceLevel`` EN 16931) a receiving system looks
for. factur-x does not turn a PDF into PDF/A: the input must already be PDF/A-3 (fonts embedded,
output intent), which fpdf2 with ``enforce_compliance="PDF/A-3B"`` produces. PDF/A conformance
of the result is not validated here (veraPDF is not available).
"""

from __future__ import annotations

import facturx

from caturactl.core.errors import InputError

# The names receivers look for: Factur-X/ZUGFeRD 2.x, ZUGFeRD 1.0, ZUGFeRD's XRECHNUNG profile.
_XML_NAMES = ["factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml"]


def embed(pdf: bytes, xml: bytes, *, check_xsd: bool = True, lang: str = "de-DE") -> bytes:
    """The PDF/A-3 ``pdf`` with ``xml`` embedded as factur-x.xml, Factur-X profile EN 16931.

    ``check_xsd`` checks the XML against the Factur-X EN 16931 XSD first. Raises InputError
    when the PDF cannot be read or the XML is refused, with factur-x's message.
    """
    try:
        return facturx.generate_from_binary(
            pdf, xml, flavor="factur-x", level="en16931", check_xsd=check_xsd, lang=lang)
    except Exception as err:
        # factur-x raises plain Exception (XSD) and ValueError; pypdf and lxml raise their own.
        # Whatever it is, the input was refused and nothing was written.
        raise InputError(f"cannot embed the e-invoice XML into the PDF: {err}") from err


def extract(pdf: bytes) -> bytes:
    """The e-invoice XML embedded in ``pdf``, byte for byte as it was embedded.

    Raises InputError when the PDF cannot be read or holds no factur-x/ZUGFeRD/XRechnung XML.
    """
    try:
        name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False, filenames=list(_XML_NAMES))
    except Exception as err:
        # pypdf raises PdfReadError and friends; factur-x ValueError/TypeError on bad input.
        raise InputError(f"cannot read the PDF: {err}") from err
    if not name or not xml:
        raise InputError("the PDF holds no e-invoice XML (factur-x.xml)")
    return xml
