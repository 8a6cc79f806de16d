"""`atbb diff --from STATE --to STATE`: what changed in the read models between two
positions of the log, two moments, or two generations (``appview.states``)."""

from __future__ import annotations

import json

import click

from appview.bootstrap import bootstrap
from appview.settings import Settings
from appview.states import StateName, UnknownState, parse_state, read_state
from projections.row_diff import diff_snapshots, in_words


def _state(ctx: click.Context, param: click.Parameter, value: str) -> StateName:
    try:
        return parse_state(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("diff")
@click.option("--from", "start", callback=_state, required=True,
              help="A position (1200), a time (2026-12-01T14:05Z), a generation (gen:2)"
                   " or live.")
@click.option("--to", "end", callback=_state, default="live", show_default=True,
              help="The same kinds as --from.")
@click.option("--json", "as_json", is_flag=True, help="Every row added, removed and "
              "changed, as JSON.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="Rows shown per table (in words; --json shows all).")
@click.pass_obj
def diff_command(settings: Settings, start: StateName, end: StateName, as_json: bool,
                 limit: int) -> None:
    """Per read-model table, the rows added, removed and changed between two states:
    positions and times are projected afresh from the local log, in memory;
    generations are read as they are."""
    services = bootstrap(settings)
    try:
        before, before_label = read_state(services, start)
        after, after_label = read_state(services, end)
    except UnknownState as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        services.close()
    diffs = diff_snapshots(before, after)
    if as_json:
        click.echo(json.dumps({"from": before_label, "to": after_label,
                               "tables": [d.as_dict() for d in diffs]},
                              indent=2, default=str))
        return
    click.echo(f"from {before_label} to {after_label}:")
    if not diffs:
        click.echo("no row differs")
    for line in in_words(diffs, after, limit=limit):
        click.echo(line)
