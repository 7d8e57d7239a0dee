"""The merchant's look on the papers drawn here besides the invoice (the delivery note and the
shipping label a dropshipper puts on and in the parcel): its logo, its colour and its font, as
``[documents]`` in caturactl.toml names them. The defaults are the invoice's own (the logo in
templates/invoices/, DejaVu Sans from Debian's fonts-dejavu-core), so every paper the buyer gets
from the merchant looks alike, whoever packed the parcel.

A delivery note rendered without a design (``Design()``: no logo, black, core Helvetica) is the
plain one the merchant's own warehouse gets, byte for byte as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fpdf import FPDF

from caturactl.core.errors import ConfigError

CORE_FONT = "helvetica"
FAMILY = "merchant"  # the name the design's TrueType font is registered under in a document
NO_LOGO = "none"
# The invoice's font (connectors/einvoice/pdf.py draws the invoice with it).
FONT_PACKAGE = "fonts-dejavu-core"
DEFAULT_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
DEFAULT_FONT_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


@dataclass(frozen=True)
class Design:
    """Logo (PNG or JPEG bytes), the accent colour (RGB) and the TrueType faces; no font means
    core Helvetica in Windows-1252."""

    logo: bytes | None = None
    color: tuple[int, int, int] = (0, 0, 0)
    font: Path | None = None
    font_bold: Path | None = None

    def tint(self, share: float) -> tuple[int, int, int]:
        """The colour mixed with white: ``share`` 0 is white, 1 the colour itself (table fills)."""
        return tuple(round(255 - (255 - c) * share) for c in self.color)  # type: ignore[return-value]


def color(text: str, where: str) -> tuple[int, int, int]:
    """``#RRGGBB`` as an RGB triple; ConfigError naming ``where`` otherwise."""
    value = text.strip().removeprefix("#")
    if len(value) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in value):
        raise ConfigError(f"not a colour like #125E6E: {text!r}", where=where)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _path(given: str, base_dir: Path) -> Path:
    path = Path(given).expanduser()
    return path if path.is_absolute() else base_dir / path


def _logo(given: str, base_dir: Path) -> bytes | None:
    if given.strip().lower() == NO_LOGO:
        return None
    if not given:
        return resources.files("templates.invoices").joinpath("logo.png").read_bytes()
    path = _path(given, base_dir)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the logo: {exc.strerror}", where=f"documents.logo: {path}") from None
    if not data.startswith(_IMAGE_MAGIC):
        raise ConfigError("the logo must be a PNG or JPEG file", where=f"documents.logo: {path}")
    return data


def _font(given: str, default: Path, key: str, base_dir: Path) -> Path:
    path = _path(given, base_dir) if given else default
    if not path.is_file():
        hint = f"; install the Debian package {FONT_PACKAGE}" if not given else ""
        raise ConfigError(f"font file {path} is missing{hint}", where=f"documents.{key}")
    return path


def load(*, logo: str, color_text: str, font: str, font_bold: str, base_dir: Path) -> Design:
    """The design the ``[documents]`` values name (paths relative to ``base_dir``); ConfigError
    naming the key when a file is missing or not what it should be."""
    regular = _font(font, DEFAULT_FONT, "font", base_dir)
    bold_default = DEFAULT_FONT_BOLD if not font else regular
    return Design(logo=_logo(logo, base_dir), color=color(color_text, "documents.color"), font=regular,
                  font_bold=_font(font_bold, bold_default, "font_bold", base_dir))


def use_fonts(pdf: FPDF, design: Design) -> str:
    """Register the design's faces with ``pdf`` (regular and bold) and return the family to pass
    to ``set_font``; without a font, core Helvetica in Windows-1252."""
    if design.font is None:
        pdf.core_fonts_encoding = "windows-1252"  # € „ “ – (toolchain.md §7)
        return CORE_FONT
    pdf.add_font(FAMILY, "", str(design.font))
    pdf.add_font(FAMILY, "B", str(design.font_bold or design.font))
    return FAMILY
