"""Generated damage to the files partners and banks send: every reader either reads a file or
refuses it with an InputError naming where (exit 65 at the terminal), never another exception
(an internal error, exit 1). The valid samples are damaged the ways files are: cut short, a run
of bytes lost or doubled, a value replaced by a strange one, a wrong encoding."""

from __future__ import annotations

from datetime import timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caturactl.core.errors import InputError
from caturactl.fulfilment.dropship import partner_stock
from connectors.bank import read_statement
from connectors.opentrans import answers, cancellations, invoices, returns
from tests import dropship

BANK = Path(__file__).resolve().parents[1] / "data" / "bank"
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
ODD = st.sampled_from([b"", b"-", b"NaN", b"1E+308", b"99999999999999999999999", b"\x00", b"\xff\xfe", b"<", b"&",
                       b"]]>", b"2026-02-30", b"12,50", b"-0", b"\xc3(", b";", b'"', b"\r\n", "²³١٢".encode()])


@st.composite
def damaged(draw, sample: bytes) -> bytes:
    """``sample`` with one to three kinds of damage."""
    data = bytearray(sample)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["cut", "drop", "double", "replace", "insert", "recode"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        j = min(len(data), i + draw(st.integers(1, 40)))
        if kind == "cut":
            del data[i:]
        elif kind == "drop":
            del data[i:j]
        elif kind == "double":
            data[j:j] = data[i:j]
        elif kind == "replace":
            data[i:j] = draw(ODD)
        elif kind == "insert":
            data[i:i] = draw(st.one_of(ODD, st.binary(max_size=12)))
        else:
            data = bytearray(bytes(data).decode("utf-8", "replace").encode("utf-16"))
    return bytes(data)


def _reads_or_refuses(read, *args) -> None:
    try:
        read(*args)
    except InputError as exc:
        assert str(exc).strip()  # it says what is wrong


SAMPLES = {
    "camt053_v02.xml": (BANK / "camt053_v02.xml").read_bytes(),
    "camt053_v08.xml": (BANK / "camt053_v08.xml").read_bytes(),
    "mt940_sparkasse.sta": (BANK / "mt940_sparkasse.sta").read_bytes(),
}


@FUZZ
@given(name=st.sampled_from(sorted(SAMPLES)), data=st.data())
def test_damaged_bank_statements_are_read_or_refused_with_a_reason(name, data):
    _reads_or_refuses(read_statement, name, data.draw(damaged(SAMPLES[name])))


ANSWER = dropship.order_response("PO000001", {1: (2, ""), 2: (0, "out_of_stock")})
DISPATCH = dropship.dispatch("PO000001", "00340434161094042557", {1: 2})


@FUZZ
@given(sample=st.sampled_from([ANSWER, DISPATCH]), data=st.data())
def test_damaged_opentrans_answers_and_dispatch_notes_are_read_or_refused(sample, data):
    _reads_or_refuses(answers.read, "ORDRSP_PO000001.xml", data.draw(damaged(sample)), timezone.utc)


CSVS = [
    (cancellations.read, b"purchase_order;cancellation;note\nPO000001;accepted;\nPO000002;refused;left today\n"),
    (returns.read, b"return;condition;note\nRT000001;as_new;\nRT000002;damaged;box torn\n"),
    (partner_stock.read_csv, b"sku;quantity;as_of\nTOOL-1;40;2026-11-24T08:00:00+01:00\nLAMP-2;0;2026-11-24T08:00\n"),
    (lambda name, data: partner_stock.figures_as_of(name, data, timezone.utc),
     b"sku;quantity;as_of\nTOOL-1;40;2026-11-24T08:00:00+01:00\nLAMP-2;0;2026-11-24T08:00\n"),
    (invoices.read, b"invoice;date;purchase_order;line;sku;quantity;unit_price;tax_rate;currency\n"
                    b"R-1;2026-11-30;PO000001;1;TOOL-1;2;10,00;19;EUR\n"),
]


@FUZZ
@given(which=st.integers(0, len(CSVS) - 1), data=st.data())
def test_damaged_partner_csv_files_are_read_or_refused_with_a_reason(which, data):
    read, sample = CSVS[which]
    _reads_or_refuses(read, "partner.csv", data.draw(damaged(sample)))


def test_the_undamaged_samples_are_read():
    """The damage above starts from files the readers take: each sample reads whole."""
    assert all(read_statement(name, data) for name, data in SAMPLES.items())
    assert len(answers.read("a.xml", ANSWER, timezone.utc).answers) == 2
    assert len(answers.read("d.xml", DISPATCH, timezone.utc).parcels) == 1
    for read, sample in CSVS:
        assert read("partner.csv", sample)
