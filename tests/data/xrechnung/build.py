"""Rebuild XRechnung-CII-validation.xsl, KoSIT's XRechnung 3.0 CII schematron compiled to XSLT.

KoSIT ships the rules as Schematron sources; its releases (projekte.kosit.org) carry the compiled
file, this build makes the same from the public repositories (see NOTICE.md for the commits):

    python tests/data/xrechnung/build.py KOSIT_CHECKOUT PEPPOL_CHECKOUT SCHXSLT_CHECKOUT

1. KoSIT's ``src/xsl/peppol-into-xr.xsl`` merges the Peppol BIS 3 CII rules XRechnung takes over
   (PEPPOL-EN16931-*.sch, from the Peppol checkout's ``rules/sch``, expected by KoSIT in
   ``build/bis/``) into ``src/validation/schematron/cii/XRechnung-CII-validation.sch``;
2. SchXslt's XSLT 2.0 pipeline compiles the merged Schematron to one XSLT, run by saxonche.
"""

import shutil
import sys
from pathlib import Path

import saxonche

HERE = Path(__file__).resolve().parent


def main(kosit: str, peppol: str, schxslt: str) -> None:
    k = Path(kosit)
    bis = k / "build" / "bis"
    bis.mkdir(parents=True, exist_ok=True)
    for name in ("PEPPOL-EN16931-UBL.sch", "PEPPOL-EN16931-CII.sch"):
        shutil.copy(Path(peppol) / "rules" / "sch" / name, bis / name)
    with saxonche.PySaxonProcessor(license=False) as p:
        x = p.new_xslt30_processor()
        merge = x.compile_stylesheet(stylesheet_file=str(k / "src" / "xsl" / "peppol-into-xr.xsl"))
        merge.set_parameter("syntax", p.make_string_value("CII"))
        merged = merge.transform_to_string(
            source_file=str(k / "src" / "validation" / "schematron" / "cii" / "XRechnung-CII-validation.sch"))
        out_sch = k / "build" / "XRechnung-CII-validation.sch"
        out_sch.write_text(merged, encoding="utf-8")
        pipeline = Path(schxslt) / "core" / "src" / "main" / "resources" / "xslt" / "2.0" / "pipeline-for-svrl.xsl"
        compiled = x.compile_stylesheet(stylesheet_file=str(pipeline)).transform_to_string(source_file=str(out_sch))
    (HERE / "XRechnung-CII-validation.xsl").write_text(compiled, encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:4])
