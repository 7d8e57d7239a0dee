"""``caturactl outbox list|show|retry|send``: what waits to be sent, what failed and why."""

from __future__ import annotations

import click

from caturactl import pipeline
from caturactl.cli.batch import batch
from caturactl.cli.listing import listing, showing
from caturactl.cli.output import Column, local_time
from caturactl.cli.params import count, row_ref
from caturactl.core.errors import InputError
from caturactl.outbox.service import find
from caturactl.views.cockpit import outbox_rows


OUTBOX_COLUMNS = [Column("id", "#", "right"), Column("kind", "Kind"), Column("target", "Target"),
                  Column("key", "Key", max_width=50), Column("status", "Status"), Column("attempts", "Tries", "right"),
                  Column("next_attempt", "Next try"), Column("done", "Done"),
                  Column("last_error", "Last error", max_width=60)]


@click.group()
def outbox() -> None:
    """What waits to be sent (files, e-mails, Amazon confirmations), what failed and why."""


@outbox.command("list")
@click.option("--status", type=click.Choice(["open", "pending", "failed", "done", "all"]), default="open",
              show_default=True, help="open = pending and failed.")
@click.option("--kind", type=click.Choice(["upload", "email", "amazon_confirm_shipment", "invoice_upload",
                                           "review_request"]))
@click.option("--limit", type=count(), default=200, show_default=True)
@listing(OUTBOX_COLUMNS, "Outbox", empty="the outbox is empty")
def outbox_list(app, s, status, kind, limit) -> list[dict]:
    """List outbox messages, newest first."""
    return outbox_rows(s, app.cfg.tz, status=status, kind=kind, limit=limit)


@outbox.command("show")
@click.argument("message")
@showing(lambda r: f"Outbox message {r['id']}", lines=lambda r: [f"    {k}: {v}" for k, v in r["payload"].items()])
def outbox_show(app, s, message: str) -> dict:
    """Show one message (by number or key) with its payload (file contents left out)."""
    tz = app.cfg.tz
    m = find(s, row_ref(message, "outbox message"))
    payload = {k: (f"<{len(v) * 3 // 4} bytes>" if k == "content_b64" else v) for k, v in (m.payload or {}).items()}
    return {"id": m.id, "key": m.key, "kind": m.kind, "target": m.target, "status": m.status,
            "attempts": m.attempts, "created": local_time(m.created_at, tz),
            "next_attempt": local_time(m.next_attempt_at, tz), "done": local_time(m.done_at, tz),
            # a send began then and never got an outcome: the next attempt asks the remote first
            "in_doubt_since": local_time(m.sending_at, tz) if m.status != "done" else "",
            "last_error": m.last_error, "payload": payload}


@outbox.command("retry")
@click.argument("messages", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Every failed message.")
@click.option("--resend", is_flag=True,
              help="Send again even if a crash left the message in doubt (you checked: it did not arrive).")
@batch("Say what would be queued again; change nothing.")
@click.pass_obj
def outbox_retry(obj, messages: tuple[str, ...], all_failed: bool, resend: bool, dry_run: bool, as_json: bool):
    """Queue failed messages again (by number or key) and send them now.

    A message a crash left in doubt is first checked at the remote side again; with --resend it
    is sent again as it is."""
    if not messages and not all_failed:
        raise InputError("name the messages to retry, or pass --all-failed")
    if resend and all_failed:
        # --resend is a person's word that one message did not arrive, not a sweep.
        raise click.UsageError("--resend needs the messages you checked named, not --all-failed")
    return pipeline.retry_messages(obj.ready_app(), [row_ref(ref, "outbox message") for ref in messages],
                                   all_failed=all_failed, resend=resend, dry_run=dry_run)


@outbox.command("done")
@click.argument("messages", nargs=-1, required=True)
@click.option("--reason", required=True, help="How you know it arrived (kept in the order's history).")
@click.option("--force", is_flag=True, help="Also a message the remote side refused (you delivered it another way).")
@batch("Say what would be marked; change nothing.")
@click.pass_obj
def outbox_done(obj, messages: tuple[str, ...], reason: str, force: bool, dry_run: bool, as_json: bool):
    """Mark messages as arrived (by number or key) without sending them.

    For a message a crash left in doubt that you found at the other side (the e-mail in the
    mailbox, the file at the location): it counts as sent, and what a send would have done
    follows (the delivery is noted as delivered, the invoice as sent). A message the remote side
    refused did not arrive: marking it needs --force."""
    if not reason.strip():
        raise InputError("say how you know it arrived", where="--reason")
    return pipeline.mark_arrived(obj.ready_app(), [row_ref(ref, "outbox message") for ref in messages],
                                 reason.strip(), force=force, dry_run=dry_run)


@outbox.command("send")
@batch("Count what is due; send nothing.")
@click.pass_obj
def outbox_send(obj, dry_run: bool, as_json: bool):
    """Send every due message (the job runner calls this between the other steps)."""
    return pipeline.send_outbox(obj.ready_app(), dry_run=dry_run)


COMMANDS = [outbox]
