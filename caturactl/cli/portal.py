"""``caturactl portal serve|invite``: the partner portal's web server, and inviting its users."""

from __future__ import annotations

import click

from caturactl.cli.output import console


@click.group()
def portal() -> None:
    """The partner portal: dropshippers see and answer their purchase orders in a browser."""


@portal.command("serve")
@click.option("--host", help="Address to listen on (default: [portal] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: [portal] port, 8765).")
@click.pass_obj
def portal_serve(obj, host: str | None, port: int | None) -> None:
    """Run the portal under uvicorn until interrupted (behind a TLS proxy in production: see the README)."""
    from caturactl.portal.app import serve  # the web stack loads only for this command, as elsewhere in cli/
    serve(obj.ready_app(), host=host, port=port)


@portal.command("invite")
@click.argument("partner")
@click.argument("email")
@click.pass_obj
def portal_invite(obj, partner: str, email: str) -> None:
    """Create the portal user EMAIL of dropshipper PARTNER (or renew its invitation) and print the
    link that sets its password; it works once and expires after [portal] invitation_hours."""
    from caturactl.portal import auth
    app = obj.ready_app()
    with app.work() as s:
        token = auth.invite(s, app.cfg, partner, email)
    console.print(auth.invitation_url(app.cfg, token), soft_wrap=True, highlight=False, markup=False)


COMMANDS = [portal]
