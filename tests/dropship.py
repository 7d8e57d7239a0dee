"""Configuration and data for the dropship tests: our warehouse WH, dropshipper DS1 by openTRANS
over a transport the test chooses (a folder, SFTP), DS2 on the portal alone."""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path

from caturactl.config import Config
from tests.fulfilment import COMPANY, carrier_section


def folder(name: str, path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True)
    return f'\n[transports.{name}]\nkind = "folder"\npath = "{path}"\n'


def config(database_url: str, tmp_path: Path, **kw) -> Config:
    """The configuration of ``sections`` with the test company, on ``database_url``."""
    text = COMPANY + f'\n[database]\nurl = "{database_url}"\n' + sections(tmp_path, **kw)
    return Config.model_validate(tomllib.loads(text))


def sections(tmp_path: Path, *, ds1_transport: str | None = None, ds1: str = "", ds2: str = "") -> str:
    """WH (own, DHL), DS1 (dropshipper, priority 50, a folder transport unless ``ds1_transport``
    gives a [transports.ds1] section) and DS2 (portal, priority 60); ``ds1``/``ds2`` add keys."""
    return carrier_section() + f"""
[locations.WH]
name = "Lager Köln"
kind = "own"
street = "Lagerweg 7"
postal_code = "50667"
city = "Köln"
priority = 10
carriers = ["dhl_paket"]
transport = "wh"
holidays = "DE-NW"

[locations.DS1]
name = "Strecke Eins GmbH"
kind = "dropshipper"
street = "Am Kai 4"
postal_code = "28195"
city = "Bremen"
priority = 50
carriers = ["dhl_paket"]
transport = "ds1"
answer_within_hours = 8
availability_max_age_hours = 24
lead_time_days = 1
holidays = "DE-NW"
purchase_prices = {{ "B-1" = "7.50", "C-1" = "3.25" }}
{ds1}

[locations.DS2]
name = "Strecke Zwei KG"
kind = "dropshipper"
street = "Ringstr. 9"
postal_code = "04109"
city = "Leipzig"
priority = 60
carriers = ["dpd_classic"]
answer_within_hours = 8
purchase_prices = {{ "B-1" = "8.10" }}
{ds2}
""" + folder("wh", tmp_path / "wh") + (ds1_transport or folder("ds1", tmp_path / "ds1"))


def order_response(number: str, answers: dict[int, tuple[int, str]]) -> bytes:
    """An ORDERRESPONSE: line -> (quantity, reject reason)."""
    items = "".join(f"""
    <ORDERRESPONSE_ITEM>
      <LINE_ITEM_ID>{line}</LINE_ITEM_ID>
      <QUANTITY>{qty}</QUANTITY>
      {f'<REMARKS type="reject_reason">{reason}</REMARKS>' if reason else ''}
    </ORDERRESPONSE_ITEM>""" for line, (qty, reason) in answers.items())
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ORDERRESPONSE version="2.1" xmlns="http://www.opentrans.org/XMLSchema/2.1"
    xmlns:bmecat="http://www.bmecat.org/bmecat/2005">
  <ORDERRESPONSE_HEADER>
    <ORDERRESPONSE_INFO>
      <ORDER_ID>{number}</ORDER_ID>
      <ORDERRESPONSE_DATE>2026-11-24T10:00:00+01:00</ORDERRESPONSE_DATE>
    </ORDERRESPONSE_INFO>
  </ORDERRESPONSE_HEADER>
  <ORDERRESPONSE_ITEM_LIST>{items}
  </ORDERRESPONSE_ITEM_LIST>
</ORDERRESPONSE>
""".encode("utf-8")


def dispatch(number: str, tracking: str, lines: dict[int, int], *, carrier: str = "DHL",
             at: datetime | None = None) -> bytes:
    """A DISPATCHNOTIFICATION of one parcel: line -> quantity."""
    when = (at.isoformat(timespec="seconds") if at else "2026-11-24T15:00:00+01:00")
    items = "".join(f"""
    <DISPATCHNOTIFICATION_ITEM>
      <LINE_ITEM_ID>{i}</LINE_ITEM_ID>
      <QUANTITY>{qty}</QUANTITY>
      <ORDER_REFERENCE><ORDER_ID>{number}</ORDER_ID><LINE_ITEM_ID>{line}</LINE_ITEM_ID></ORDER_REFERENCE>
    </DISPATCHNOTIFICATION_ITEM>""" for i, (line, qty) in enumerate(lines.items(), 1))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<DISPATCHNOTIFICATION version="2.1" xmlns="http://www.opentrans.org/XMLSchema/2.1"
    xmlns:bmecat="http://www.bmecat.org/bmecat/2005">
  <DISPATCHNOTIFICATION_HEADER>
    <DISPATCHNOTIFICATION_INFO>
      <DISPATCHNOTIFICATION_ID>DN-{number}</DISPATCHNOTIFICATION_ID>
      <DISPATCHNOTIFICATION_DATE>{when}</DISPATCHNOTIFICATION_DATE>
      <PARTIES>
        <PARTY>
          <bmecat:PARTY_ID>carrier</bmecat:PARTY_ID>
          <PARTY_ROLE>deliverer</PARTY_ROLE>
          <ADDRESS><bmecat:NAME>{carrier}</bmecat:NAME></ADDRESS>
        </PARTY>
      </PARTIES>
      <SHIPMENT_ID>{tracking}</SHIPMENT_ID>
    </DISPATCHNOTIFICATION_INFO>
  </DISPATCHNOTIFICATION_HEADER>
  <DISPATCHNOTIFICATION_ITEM_LIST>{items}
  </DISPATCHNOTIFICATION_ITEM_LIST>
</DISPATCHNOTIFICATION>
""".encode("utf-8")
