"""`atbb admin token create|list|revoke`: the bearer tokens scripts and the sign-in page
use until the web has AT Protocol sign-in."""

from __future__ import annotations

import click

from appview.bootstrap import bootstrap
from appview.settings import Settings
from events.ids import DID


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
        permissions = services.queries.viewer(did).permissions
    finally:
        services.close()
    click.echo(secret)
    click.echo(f"token {record.id} for {did} created; it is shown only now.", err=True)
    if not permissions:
        click.echo(f"note: {did} holds no permission in the forum yet; the token will be "
                   "refused (403) until the DID has a role that grants them.", err=True)


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
