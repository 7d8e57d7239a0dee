"""Fetching Amazon's settlement reports: Reports API 2021-06-30, report type
``GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2``.

Why we list instead of request: Amazon makes settlement reports on its own schedule (about every
14 days) and createReport cannot make one (reference/amazon/README.md §8). So we page through
getReports (DONE settlement reports created since a date; ``nextToken`` is sent alone, as the
model demands) and fetch each file with getReportDocument, which gives a presigned URL and,
when the file is compressed, ``compressionAlgorithm: GZIP``.

Why ``download`` returns bytes: the library decodes the file with the charset of the download's
Content-Type and falls back to ISO-8859-1 (README §9). We ask it to decode as ISO-8859-1, which
maps every byte to one character, and encode back: the bytes come out exactly as Amazon stored
them, and the settlement parser decides about the charset and the DE/EN number forms.

The same settlement can come in more than one report (README §8): deduplicating on
``settlement-id`` is the parser's job, since only the file names it.

Rates (README §3, reports_2021-06-30.json): getReports 0.0222/s burst 10, getReportDocument
0.0167/s burst 15, kept by ``SpApi.call``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sp_api.api import Reports
from sp_api.base import ApiResponse
from sp_api.base.exceptions import SellingApiBadRequestException, SellingApiNotFoundException

from caturactl.core.errors import RejectedError
from connectors.amazon.client import SpApi, amazon_says

SETTLEMENT_REPORT = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"
PAGE_SIZE = 100  # the model's maximum: fewer calls at getReports' slow rate
LOSSLESS = "iso-8859-1"  # one character per byte, so decode + encode gives back the bytes


@dataclass(frozen=True)
class SettlementReportRef:
    """One settlement report as getReports lists it."""
    report_id: str
    document_id: str
    created: datetime
    data_start: datetime | None
    data_end: datetime | None


def _time(value: Any, field: str, required: bool) -> datetime | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValueError(f"getReports answered {field}={value!r}, not a date-time")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _page(response: ApiResponse) -> tuple[list[SettlementReportRef], str | None]:
    body = response.payload if isinstance(response.payload, dict) else {}
    reports = body.get("reports")
    if not isinstance(reports, list):
        raise ValueError(f"getReports answered without a reports list: {body!r}")
    refs = []
    for r in reports:
        if not isinstance(r, dict) or r.get("reportType") != SETTLEMENT_REPORT or r.get("processingStatus") != "DONE":
            continue  # we asked for DONE settlement reports only; anything else is not ours to read
        if not (isinstance(r.get("reportId"), str) and isinstance(r.get("reportDocumentId"), str)):
            raise ValueError(f"getReports listed a DONE report without reportId or reportDocumentId: {r!r}")
        refs.append(SettlementReportRef(r["reportId"], r["reportDocumentId"],
                                        _time(r.get("createdTime"), "createdTime", True),
                                        _time(r.get("dataStartTime"), "dataStartTime", False),
                                        _time(r.get("dataEndTime"), "dataEndTime", False)))
    # The library moves nextToken out of the body into ``next_token``.
    token = response.next_token or body.get("nextToken")
    return refs, token if isinstance(token, str) and token else None


def _document(response: ApiResponse) -> bytes:
    p = response.payload if isinstance(response.payload, dict) else {}
    text = p.get("document")
    if not isinstance(text, str):
        raise ValueError(f"getReportDocument gave no document: {p.get('reportDocumentId')!r}")
    raw = text.encode(LOSSLESS)
    if raw.lstrip().startswith(b"<?xml") or raw.lstrip().startswith(b"<Error>"):
        # An expired or refused presigned URL answers with S3's XML error; a new call gets a new URL.
        raise ValueError(f"the report download was refused: {raw[:200]!r}")
    return raw


class AmazonSettlements:
    """Settlement reports of one seller: list them, download their files."""

    def __init__(self, api: SpApi, *, max_wait_seconds: float | None = None, page_size: int = PAGE_SIZE):
        self.api = api
        self.max_wait_seconds = max_wait_seconds
        self.page_size = page_size
        self._reports: Any = None

    def _client(self) -> Any:
        if self._reports is None:
            # The library adds this marketplace id to the first getReports call; a settlement
            # report names every marketplace it covers, so any configured one finds it.
            self._reports = self.api.client(Reports, self.api.cfg.marketplaces[0])
            self.api.login(self._reports)
        return self._reports

    def list_reports(self, since: datetime) -> list[SettlementReportRef]:
        """Every DONE settlement report created since ``since``, in Amazon's order, each once.
        Raises RejectedError when Amazon refuses the query, ThrottledError or RemoteError."""
        client = self._client()
        refs: list[SettlementReportRef] = []
        seen: set[str] = set()
        token: str | None = None
        while True:
            def get_page(token: str | None = token) -> ApiResponse:
                try:
                    if token is not None:
                        return client.get_reports(nextToken=token)  # the token must come alone
                    return client.get_reports(reportTypes=[SETTLEMENT_REPORT], processingStatuses=["DONE"],
                                              createdSince=since, pageSize=self.page_size)
                except (SellingApiBadRequestException, SellingApiNotFoundException) as exc:
                    raise RejectedError(f"Amazon refused the settlement report list: {amazon_says(exc)}",
                                        where="amazon getReports") from None

            page, token = self.api.call("getReports", get_page, _page, "getReports for settlements",
                                        max_wait=self.max_wait_seconds)
            for ref in page:
                if ref.report_id not in seen:
                    seen.add(ref.report_id)
                    refs.append(ref)
            if token is None:
                return refs

    def download(self, ref: SettlementReportRef) -> bytes:
        """The report's file as Amazon stored it, gunzipped when Amazon says it is compressed.
        Raises RejectedError for a document Amazon does not know, ThrottledError or RemoteError."""
        client = self._client()
        where = f"amazon settlement report {ref.report_id}"

        def fetch() -> ApiResponse:
            try:
                return client.get_report_document(ref.document_id, download=True, character_code=LOSSLESS,
                                                   timeout=self.api.cfg.timeout_seconds)
            except (SellingApiBadRequestException, SellingApiNotFoundException) as exc:
                raise RejectedError(f"Amazon refused the report document {ref.document_id}: {amazon_says(exc)}",
                                    where=where) from None
            except zlib.error as exc:
                # A truncated or refused download of a GZIP document: worth another try.
                raise ValueError(f"the report document is not valid gzip: {exc}") from None

        return self.api.call("getReportDocument", fetch, _document, f"getReportDocument for {where}",
                             max_wait=self.max_wait_seconds)

    def close(self) -> None:
        """Close the client's HTTP connections."""
        if self._reports is not None:
            self._reports.close()
            self._reports = None
