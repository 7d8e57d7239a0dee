"""ISO 20022 camt.053 (BankToCustomerStatement, "Kontoauszug"), versions 001.02 to 001.08, as the
Deutsche Kreditwirtschaft's DFÜ-Abkommen (Anlage 3) prescribes it for German banks.

Read with lxml (no entities, no network). What is read of each statement (``Stmt``): ``Id``, the
account (``Acct/Id/IBAN``), the opening and closing booked balances (``Bal`` OPBD/PRCD, CLBD), and
each booked entry (``Ntry`` with ``Sts`` BOOK): ``Amt@Ccy``, ``CdtDbtInd``, ``RvslInd``,
``BookgDt``, ``AcctSvcrRef``, ``BkTxCd``, and per transaction (``NtryDtls/TxDtls``, several in a
batch entry): its amount, ``Refs/EndToEndId``, ``RltdPties`` (``Dbtr/Nm`` in .02, ``Dbtr/Pty/Nm``
in .08; ``DbtrAcct/Id/IBAN``), ``RmtInf`` (``Ustrd``, ``Strd/CdtrRefInf/Ref``,
``Strd/RfrdDocInf/Nb``) and ``RtrInf/Rsn/Cd`` of a returned direct debit. A statement is one
when its balances and entries add up; otherwise the file is refused.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from decimal import Decimal

from lxml import etree

from caturactl.core.errors import InputError
from caturactl.ports import BankEntry, BankStatementData

NAMESPACE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.(0[2-8])")
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                         remove_comments=True, remove_pis=True)
AMOUNT = re.compile(r"\d{1,18}(\.\d{1,5})?")
CENT = Decimal("0.01")
OPENING, CLOSING = ("OPBD", "PRCD"), ("CLBD",)
# Bank transaction codes (ISO 20022 external code list) of a direct debit that came back unpaid.
RETURN_FAMILIES = {("PMNT", "RDDT", "UPDD"), ("PMNT", "RDDT", "RRTN"), ("PMNT", "IDDT", "UPDD")}
NOT_PROVIDED = "NOTPROVIDED"


def read(name: str, data: bytes) -> list[BankStatementData]:
    """Every statement of the camt.053 file ``name``. Raises InputError naming file, line and the
    XML path of the first field that is missing or wrong; nothing is returned then."""
    try:
        root = etree.fromstring(data, PARSER)
    except etree.XMLSyntaxError as exc:
        raise InputError(f"not well-formed XML: {exc.msg}", where=f"{name}:{exc.lineno}") from None
    qname = etree.QName(root)
    m = NAMESPACE.fullmatch(qname.namespace or "")
    if qname.localname != "Document" or not m:
        raise InputError(f"not a camt.053.001.02 to .08 document (root {qname.localname}, namespace "
                         f"{qname.namespace or 'none'})", where=f"{name}:{root.sourceline}:Document")
    return _Reader(name, qname.namespace, f"camt.053.001.{m.group(1)}").statements(root)


class _Reader:
    def __init__(self, name: str, ns: str, version: str) -> None:
        self.name, self.ns, self.version = name, {"c": ns}, version

    # --- finding and checking elements ---

    def _path(self, path: str) -> str:
        return "/".join(f"c:{p}" for p in path.split("/"))

    def all(self, el, path: str) -> list:
        return el.findall(self._path(path), self.ns)

    def first(self, el, path: str):
        return el.find(self._path(path), self.ns)

    def text(self, el, path: str, default: str = "") -> str:
        found = self.first(el, path)
        return " ".join(found.text.split()) if found is not None and found.text else default

    def fail(self, el, where: str, message: str) -> InputError:
        return InputError(message, where=f"{self.name}:{el.sourceline}:{where}")

    def need(self, el, path: str, where: str) -> str:
        value = self.text(el, path)
        if not value:
            raise self.fail(el, f"{where}/{path}", "missing")
        return value

    def amount(self, el, where: str) -> tuple[Decimal, str]:
        text = (el.text or "").strip()
        ccy = el.get("Ccy", "")
        if not AMOUNT.fullmatch(text):
            raise self.fail(el, where, f"not an amount: {text!r}")
        if not re.fullmatch(r"[A-Z]{3}", ccy):
            raise self.fail(el, f"{where}@Ccy", f"not a currency code: {ccy!r}")
        value = Decimal(text)
        if value != value.quantize(CENT):
            raise self.fail(el, where, f"{text} has more than two decimals")
        return value.quantize(CENT), ccy

    def day(self, el, path: str, where: str) -> date:
        found = self.first(el, f"{path}/Dt")
        text = found.text.strip() if found is not None and found.text else self.text(el, f"{path}/DtTm")[:10]
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise self.fail(el, f"{where}/{path}", f"not a date: {text!r}") from None

    def indicator(self, el, where: str, default: str | None = None) -> str:
        ind = self.text(el, "CdtDbtInd") or default
        if ind not in ("CRDT", "DBIT"):
            raise self.fail(el, f"{where}/CdtDbtInd", f"must be CRDT or DBIT, not {ind!r}")
        return ind

    # --- the message ---

    def statements(self, root) -> list[BankStatementData]:
        msg = self.first(root, "BkToCstmrStmt")
        if msg is None:
            raise self.fail(root, "Document/BkToCstmrStmt", "missing")
        msg_id = self.need(msg, "GrpHdr/MsgId", "BkToCstmrStmt")
        stmts = self.all(msg, "Stmt")
        if not stmts:
            raise self.fail(msg, "BkToCstmrStmt/Stmt", "no statement in the file")
        return [self.statement(msg_id, s, f"Stmt[{i}]") for i, s in enumerate(stmts, 1)]

    def statement(self, msg_id: str, stmt, where: str) -> BankStatementData:
        stmt_id = self.need(stmt, "Id", where)
        account = self.text(stmt, "Acct/Id/IBAN") or self.need(stmt, "Acct/Id/Othr/Id", where)
        opening = closing = None
        for i, bal in enumerate(self.all(stmt, "Bal"), 1):
            code = self.text(bal, "Tp/CdOrPrtry/Cd")
            if code in OPENING + CLOSING:
                amt = self.first(bal, "Amt")
                if amt is None:
                    raise self.fail(bal, f"{where}/Bal[{i}]/Amt", "missing")
                value, _ = self.amount(amt, f"{where}/Bal[{i}]/Amt")
                value = value if self.indicator(bal, f"{where}/Bal[{i}]") == "CRDT" else -value
                if code in OPENING:
                    opening = value
                else:
                    closing = value
        entries: list[BankEntry] = []
        seen: set[str] = set()
        for i, ntry in enumerate(self.all(stmt, "Ntry"), 1):
            for e in self.entry(stmt_id, ntry, f"{where}/Ntry[{i}]", i):
                ref = e.entry_ref
                n = 2
                while ref in seen:  # a bank that repeats a reference: the position keeps them apart
                    ref, n = f"{e.entry_ref}#{n}", n + 1
                seen.add(ref)
                entries.append(e if ref == e.entry_ref else replace(e, entry_ref=ref))
        currency = self.text(stmt, "Acct/Ccy") or (entries[0].currency if entries else "EUR")
        if opening is not None and closing is not None:
            moved = sum((e.amount for e in entries if e.currency == currency), Decimal(0))
            if opening + moved != closing:
                raise self.fail(stmt, f"{where}/Bal", f"opening balance {opening} and the entries ({moved:+}) "
                                                      f"do not make the closing balance {closing}")
        return BankStatementData(identity=f"camt:{msg_id}/{stmt_id}", format=self.version, account=account,
                                 statement_id=stmt_id, currency=currency, opening=opening, closing=closing,
                                 entries=tuple(entries))

    def entry(self, stmt_id: str, ntry, where: str, index: int) -> list[BankEntry]:
        status = self.text(ntry, "Sts/Cd") or self.text(ntry, "Sts")
        if status != "BOOK":
            if status in ("PDNG", "INFO"):
                return []  # not booked: not part of the statement's balance
            raise self.fail(ntry, f"{where}/Sts", f"must be BOOK, PDNG or INFO, not {status!r}")
        amt = self.first(ntry, "Amt")
        if amt is None:
            raise self.fail(ntry, f"{where}/Amt", "missing")
        total, ccy = self.amount(amt, f"{where}/Amt")
        ind = self.indicator(ntry, where)
        reversal = self.text(ntry, "RvslInd").lower() == "true"
        booked = self.day(ntry, "BookgDt", where)
        ref = self.text(ntry, "AcctSvcrRef") or self.text(ntry, "NtryRef") or f"{stmt_id}/{index}"
        family = (self.text(ntry, "BkTxCd/Domn/Cd"), self.text(ntry, "BkTxCd/Domn/Fmly/Cd"),
                  self.text(ntry, "BkTxCd/Domn/Fmly/SubFmlyCd"))
        code = "/".join(c for c in family if c) or self.text(ntry, "BkTxCd/Prtry/Cd")
        txs = self.all(ntry, "NtryDtls/TxDtls")
        if not txs:
            sign = 1 if ind == "CRDT" else -1
            return [BankEntry(where=f"{self.name}:{ntry.sourceline}:{where}", entry_ref=ref, booking_date=booked,
                              amount=sign * total, currency=ccy, remittance=self.text(ntry, "AddtlNtryInf"),
                              returned=ind == "DBIT" and (reversal or family in RETURN_FAMILIES), bank_code=code)]
        out, moved = [], Decimal(0)
        for k, tx in enumerate(txs, 1):
            tw = f"{where}/NtryDtls/TxDtls[{k}]"
            tx_amt = self.first(tx, "Amt") if self.first(tx, "Amt") is not None else self.first(tx, "AmtDtls/TxAmt/Amt")
            if tx_amt is None:
                if len(txs) > 1:
                    raise self.fail(tx, f"{tw}/Amt", "missing: a batch entry needs each transaction's amount")
                amount, tx_ccy = total, ccy
            else:
                amount, tx_ccy = self.amount(tx_amt, f"{tw}/{'Amt' if tx_amt.getparent() is tx else 'AmtDtls/TxAmt/Amt'}")
            if tx_ccy != ccy:
                raise self.fail(tx, tw, f"transaction in {tx_ccy} inside an entry in {ccy}")
            tx_ind = self.indicator(tx, tw, default=ind)
            signed = amount if tx_ind == "CRDT" else -amount
            moved += signed
            rtr = self.first(tx, "RtrInf")
            returned = tx_ind == "DBIT" and (rtr is not None or reversal or family in RETURN_FAMILIES)
            credit_side = tx_ind == "CRDT" or returned
            party = "Dbtr" if credit_side else "Cdtr"
            name = (self.text(tx, f"RltdPties/{party}/Nm") or self.text(tx, f"RltdPties/{party}/Pty/Nm")
                    or self.text(tx, f"RltdPties/Ultmt{party}/Nm") or self.text(tx, f"RltdPties/Ultmt{party}/Pty/Nm"))
            iban = self.text(tx, f"RltdPties/{party}Acct/Id/IBAN")
            texts = [u.text.strip() for u in self.all(tx, "RmtInf/Ustrd") if u.text and u.text.strip()]
            texts += [r.text.strip() for r in self.all(tx, "RmtInf/Strd/CdtrRefInf/Ref") if r.text and r.text.strip()]
            texts += [r.text.strip() for r in self.all(tx, "RmtInf/Strd/RfrdDocInf/Nb") if r.text and r.text.strip()]
            e2e = self.text(tx, "Refs/EndToEndId")
            reason = (self.text(tx, "RtrInf/Rsn/Cd") or self.text(tx, "RtrInf/Rsn/Prtry")) if rtr is not None else ""
            tx_ref = self.text(tx, "Refs/AcctSvcrRef") or (ref if len(txs) == 1 else f"{ref}/{k}")
            out.append(BankEntry(where=f"{self.name}:{tx.sourceline}:{tw}", entry_ref=tx_ref, booking_date=booked,
                                 amount=signed, currency=ccy, debtor_name=name, debtor_iban=iban,
                                 remittance=" ".join(texts), end_to_end_id="" if e2e == NOT_PROVIDED else e2e,
                                 returned=returned, return_reason=reason, bank_code=code))
        signed_total = total if ind == "CRDT" else -total
        if len(txs) > 1 and moved != signed_total:
            raise self.fail(ntry, f"{where}/Amt", f"the entry's {signed_total:+} is not the sum of its "
                                                   f"transactions ({moved:+})")
        return out

