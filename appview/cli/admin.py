"""`atbb admin token create|list|revoke`: the bearer tokens scripts and the sign-in page
use until the web has AT Protocol sign-in."""

from __future__ import annotations

import click

from appview.bootstrap import Services, bootstrap
from appview.settings import Settings
from events.ids import DID
from events.store_postgres import redact
from projections.queries import Queries


@click.group()
def admin() -> None:
    """Administration of the appview itself."""


@admin.group()
def token() -> None:
    """Admin bearer tokens (what a token may do follows its DID's role)."""


@token.command("create")
@click.option("--did", required=True, help="The account the token acts as.")
@click.option("--label", default="", help="A note to recognise the token by.")
@click.pass_obj
def create(settings: Settings, did: str, label: str) -> None:
    """Issue a token for DID and print it once (only its hash is stored)."""
    try:
        DID.parse(did)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--did") from None
    services = bootstrap(settings)
    try:
        record, secret = services.admin_tokens.issue(did, label)
        empty = services.event_log.head() == 0
        forum_did = served_forum(services) or settings.forum_did
        permissions = (Queries(services.read_models, forum_did).viewer(did).permissions
                       if forum_did else None)
    finally:
        services.close()
    where = redact(settings.event_log_url)
    click.echo(secret)
    click.echo(f"token {record.id} for {did} created beside the event log {where}; it is "
               "shown only now.", err=True)
    if empty:
        click.echo("note: that event log is empty: only an appview using it accepts the "
                   "token. (`atbb demo` keeps its own under DATA_DIR/demo and prints the "
                   "command that makes a token for it.)", err=True)
    if not forum_did:
        click.echo("note: no FORUM_DID is set and the read models hold no forum yet: "
                   f"the token may do what {did}'s role allows in the appview that serves "
                   "them (everything, if it is that appview's FORUM_DID).", err=True)
    elif not permissions:
        click.echo(f"note: {did} holds no permission in the forum of {forum_did} yet; the "
                   "token will be refused (403) until the DID has a role that grants them.",
                   err=True)


def served_forum(services: Services) -> str:
    """The DID of the forum the read models were built for ("" before its record is in):
    the serving appview's FORUM_DID, whatever this command was given, for a projection
    takes forum records from that DID only."""
    with services.read_models.read() as session:
        found = session.scalar("SELECT did FROM forum WHERE deleted = 0 LIMIT 1")
    return "" if found is None else str(found)


@token.command("list")
@click.pass_obj
def list_tokens(settings: Settings) -> None:
    """Every token: id, DID, label, created, revoked."""
    services = bootstrap(settings)
    try:
        tokens = services.admin_tokens.list()
    finally:
        services.close()
    for record in tokens:
        state = f"revoked {record.revoked_at}" if record.revoked_at else "live"
        click.echo(f"{record.id}  {record.did}  {record.created_at}  {state}  {record.label}")


@token.command("revoke")
@click.argument("token_id")
@click.pass_obj
def revoke(settings: Settings, token_id: str) -> None:
    """Revoke the token with TOKEN_ID (sessions signed in with it end too)."""
    services = bootstrap(settings)
    try:
        revoked = services.admin_tokens.revoke(token_id)
    finally:
        services.close()
    if not revoked:
        raise click.ClickException(f"no live token with id {token_id!r}")
    click.echo(f"token {token_id} revoked")
