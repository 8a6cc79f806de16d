"""`atbb forum login|logout|status`: the Forum account's agent's credentials; `atbb init`:
a new forum's records in the Forum account's repo (``appview.forum_init``)."""

from __future__ import annotations

import asyncio

import click

from appview.auth.errors import AuthError
from appview.bootstrap import Services, bootstrap
from appview.forum_init import InitReport, init_forum
from appview.settings import Settings
from appview.writes.errors import WriteError
from appview.writes.forum_agent import ForumLoginError


@click.group()
def forum() -> None:
    """The Forum account: the credentials its agent writes the forum's records with."""


def _need_forum_did(settings: Settings) -> None:
    if not settings.forum_did:
        raise click.UsageError("set FORUM_DID (or --forum-did) to the Forum account's DID")


@forum.command("login")
@click.option("--identifier", required=True, help="The Forum account's handle or DID.")
@click.option("--password", prompt="App password", hide_input=True,
              help="An app password of the Forum account (asked for when left out).")
@click.option("--pds-url", help="Its PDS, when its DID document cannot be read from here.")
@click.pass_obj
def login(settings: Settings, identifier: str, password: str, pds_url: str | None) -> None:
    """Sign the Forum account in with an app password and store the login, sealed,
    beside the event log; the appview's agent uses it from then on."""
    _need_forum_did(settings)
    services = bootstrap(settings)

    async def run() -> str:
        try:
            stored = await services.forum_agent.login(identifier, password, pds_url=pds_url)
        finally:
            await services.forum_agent.aclose()
        return f"{stored.handle or stored.did} at {stored.pds_url}"

    try:
        who = asyncio.run(run())
    except (ForumLoginError, AuthError) as exc:
        raise click.ClickException(f"not signed in: {exc}") from None
    finally:
        services.close()
    click.echo(f"signed in as {who}; the login is stored sealed beside the event log."
               " A running appview picks it up within a minute (or at its next start).")


@forum.command("logout")
@click.pass_obj
def logout(settings: Settings) -> None:
    """Forget the stored login (and end its session at the PDS)."""
    services = bootstrap(settings)

    async def run() -> bool:
        try:
            return await services.forum_agent.logout()
        finally:
            await services.forum_agent.aclose()

    try:
        gone = asyncio.run(run())
    finally:
        services.close()
    click.echo("the stored login is forgotten" if gone else "no login was stored")


@forum.command("status")
@click.pass_obj
def status(settings: Settings) -> None:
    """Sign in once with what is stored or configured and say how it went."""
    services = bootstrap(settings)

    async def run() -> dict[str, object]:
        try:
            await services.forum_agent.start()
            return services.forum_agent.health()
        finally:
            await services.forum_agent.aclose()

    try:
        health = asyncio.run(run())
    finally:
        services.close()
    for key, value in health.items():
        click.echo(f"{key}: {value}")


async def _init(services: Services, name: str, description: str | None,
                owner: str | None) -> InitReport:
    agent = services.forum_agent
    try:
        await agent.start()
        return await init_forum(services.writer, agent.session(), services.clock, name=name,
                                description=description, owner=owner)
    finally:
        await agent.aclose()


@click.command("init")
@click.option("--name", required=True, help="The forum's name.")
@click.option("--description", help="A sentence about the forum.")
@click.option("--owner", help="The DID of the first Owner (the operator's own account).")
@click.pass_obj
def init(settings: Settings, name: str, description: str | None, owner: str | None) -> None:
    """Create a new forum in the Forum account's repo: its forum record, the default
    roles (Owner, Admin, Moderator, Member) and the first Owner's role assignment.
    Needs `atbb forum login` first (or FORUM_HANDLE and FORUM_PASSWORD); safe to run
    again: what is there already is kept."""
    _need_forum_did(settings)
    if owner is not None and not owner.startswith("did:"):
        raise click.BadParameter("give the Owner's DID (did:plc:... or did:web:...)",
                                 param_hint="--owner")
    services = bootstrap(settings)
    try:
        report = asyncio.run(_init(services, name, description, owner))
    except (WriteError, AuthError) as exc:
        raise click.ClickException(f"stopped: {exc}") from None
    finally:
        services.close()
    for line in report.lines:
        click.echo(line)
    click.echo(f"{report.created} record(s) written to the Forum account's repo"
               f" {settings.forum_did}.")
