"""``caturactl settlement import|list|show|differences``: Amazon's payouts reconciled to the cent."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from caturactl.cli.output import DRY, Column, console, emit, emit_record, format_options, local_time, pick_format, summary
from caturactl.core import clock

COLUMNS = [Column("settlement", "Settlement"), Column("start", "From"), Column("end", "To"),
           Column("deposit", "Deposit"), Column("total", "Payout", "right"), Column("sales", "Sales", "right"),
           Column("refunds", "Refunds", "right"), Column("fees", "Fees", "right"), Column("reserve", "Reserve", "right"),
           Column("other", "Other", "right"), Column("differences", "Differences", "right"), Column("currency", "Cur")]
FEE_COLUMNS = [Column("type", "Transaction / amount type / description"), Column("amount", "Amount", "right"),
               Column("account", "Account"), Column("tax_key", "BU"), Column("reverse_charge", "§ 13b"),
               Column("named_by", "Named by")]
DIFF_COLUMNS = [Column("settlement", "Settlement"), Column("order", "Order"), Column("kind", "Kind"),
                Column("amount", "Amount", "right"), Column("settled", "Settled", "right"),
                Column("expected", "Expected", "right"), Column("reason", "Reason", max_width=70)]


@click.group()
def settlement() -> None:
    """Amazon settlements: payouts matched to invoices, differences listed with reasons."""


@settlement.command("fetch")
@click.option("--days", type=click.IntRange(min=1, max=90), default=30, show_default=True,
              help="Look for reports created in the last N days.")
@click.option("--dry-run", is_flag=True, help="List what would be fetched; download, write and store nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def settlement_fetch(obj, days: int, dry_run: bool, as_json: bool) -> None:
    """List and download new settlement reports (Reports API), keep the files, import them.

    Amazon produces settlement reports on its own schedule (about every 14 days); they can only
    be listed and downloaded. The files are kept under settlements/ beside caturactl.toml.
    """
    from datetime import timedelta

    from caturactl import channels
    from caturactl.accounting import settlement as service
    app = obj.ready_app()
    with app.session() as s:
        source = app.settlement_reports(s)
        try:
            r = service.fetch(s, source, app.cfg.base_dir / "settlements",
                              invoiced_by_channel=channels.settling().issues_invoices(app.cfg),
                              since=clock.now() - timedelta(days=days), dry_run=dry_run)
        finally:
            source.close()
    if dry_run:
        line = (DRY + f"{r.reports} report(s), {len(r.to_download)} to download"
                + (f" ({', '.join(r.to_download)})" if r.to_download else ""))
    else:
        line = (f"{r.reports} report(s): {len(r.imported)} settlement(s) imported"
                + (f" ({', '.join(r.imported)})" if r.imported else "") + f", {r.duplicates} seen before")
    summary("settlement fetch", r.as_dict(), as_json=as_json, line=line)


@settlement.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check and reconcile; store and mark nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def settlement_import(obj, file: Path, dry_run: bool, as_json: bool) -> None:
    """Import a settlement flat file (V2, DE or EN form) downloaded from Seller Central.

    The whole file is checked first: one bad line (or lines that do not add up to the total)
    rejects it with file:line:column, and nothing is stored. A settlement already imported is
    recognised and stored once.
    """
    from caturactl import channels
    from caturactl.accounting.bookings import unmapped_fees
    from caturactl.accounting.settlement import import_file
    app = obj.ready_app()
    with app.session() as s:
        r = import_file(s, file, dry_run=dry_run, invoiced_by_channel=channels.settling().issues_invoices(app.cfg))
        s.rollback() if dry_run else s.commit()
    unmapped = unmapped_fees(r.fee_totals, app.cfg.accounts)
    if r.duplicate:
        line = f"settlement {r.settlement_id} was imported before; nothing changed"
    else:
        line = (f"settlement {r.settlement_id}: {r.lines} line(s), payout {r.total}; {r.paid} order(s) paid, "
                f"{r.differences} difference(s) totalling {r.differences_total}")
        if unmapped:
            line += f"; {len(unmapped)} fee line(s) not named in [accounts.fee_accounts]"
    data = {**r.as_dict(), "unmapped_fees": [{"description": d, "amount": str(a)} for d, a in unmapped]}
    summary("settlement import", data, as_json=as_json, line=(DRY if dry_run else "") + line,
            ok=not (r.differences or unmapped))
    if unmapped and not as_json:
        fallback = app.cfg.accounts.account(app.cfg.accounts.fee_default)
        for description, amount in unmapped:
            console.print(f"  {description} {amount}: will be booked under § 13b on {fallback}", highlight=False,
                          markup=False)


@settlement.command("list")
@format_options
@click.pass_obj
def settlement_list(obj, fmt, as_json) -> None:
    """List imported settlements with their totals per kind of money."""
    from caturactl.accounting.models import Settlement
    app = obj.ready_app()
    tz = app.cfg.tz
    with app.session() as s:
        rows = [_row(st, tz) for st in s.scalars(select(Settlement).order_by(Settlement.start))]
    emit(rows, COLUMNS, fmt=pick_format(fmt, as_json), title=f"Settlements ({len(rows)})", empty="no settlements")


def _row(st, tz) -> dict:
    return {"settlement": st.settlement_id, "start": local_time(st.start, tz, "%Y-%m-%d"),
            "end": local_time(st.end, tz, "%Y-%m-%d"), "deposit": local_time(st.deposit_date, tz, "%Y-%m-%d"),
            "total": str(st.total_amount), "sales": str(st.sales), "refunds": str(st.refunds), "fees": str(st.fees),
            "reserve": str(st.reserve), "other": str(st.other), "differences": str(st.differences_total),
            "currency": st.currency}


@settlement.command("show")
@click.argument("settlement_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def settlement_show(obj, settlement_id: str, as_json: bool) -> None:
    """One settlement: totals, amounts per type, its fee lines with the account each is booked on,
    and its differences."""
    from caturactl.accounting.bookings import fee_booking
    from caturactl.views.reports import tidy
    from caturactl.accounting.settlement import find
    app = obj.ready_app()
    with app.session() as s:
        st = find(s, settlement_id)
        fees = []
        for f in st.fee_totals:
            booking = fee_booking(f.description, app.cfg.accounts)
            fees.append({"type": f.description, "amount": str(tidy(f.amount)), "account": booking.account,
                         "tax_key": booking.tax_key, "reverse_charge": booking.reverse_charge,
                         "named_by": booking.pattern or "(nothing: fee_default)"})
        record = {**_row(st, app.cfg.tz), "lines": st.lines, "file": st.file_name, "by_type": st.by_type,
                  "fee_lines": fees, "differences_list": [_diff(st, d) for d in st.differences]}
    if as_json:
        emit_record(record, fmt="json")
        return
    emit_record(record, fmt="table", title=f"Settlement {st.settlement_id}")
    emit([{"type": k, "amount": v} for k, v in record["by_type"].items()],
         [Column("type", "Transaction / amount type / description"), Column("amount", "Amount", "right")],
         fmt="table", title="Amounts per type")
    emit([{**f, "reverse_charge": "§ 13b" if f["reverse_charge"] else ""} for f in fees], FEE_COLUMNS, fmt="table",
         title="Fees and other lines: where they are booked", empty="no fee lines")
    emit(record["differences_list"], DIFF_COLUMNS, fmt="table", title="Differences", empty="no differences")


def _diff(st, d) -> dict:
    return {"settlement": st.settlement_id, "order": d.order_id, "kind": d.kind, "amount": str(d.amount),
            "settled": str(d.settled), "expected": "" if d.expected is None else str(d.expected), "reason": d.reason}


@settlement.command("differences")
@click.option("--settlement", "settlement_id", help="Only this settlement.")
@format_options
@click.pass_obj
def settlement_differences(obj, settlement_id: str | None, fmt, as_json) -> None:
    """Every amount that did not match our books, with its reason."""
    from caturactl.accounting.models import Settlement, SettlementDifference
    app = obj.ready_app()
    with app.session() as s:
        q = select(SettlementDifference, Settlement).join(Settlement).order_by(Settlement.start, SettlementDifference.id)
        if settlement_id:
            q = q.where(Settlement.settlement_id == settlement_id)
        rows = [_diff(st, d) for d, st in s.execute(q)]
    emit(rows, DIFF_COLUMNS, fmt=pick_format(fmt, as_json), title=f"Differences ({len(rows)})",
         empty="no differences")
    if rows and pick_format(fmt, as_json) == "table":
        console.print("each one needs a look: a missing invoice, a missing credit note, or an order sold outside "
                      "caturactl", highlight=False)


COMMANDS = [settlement]
