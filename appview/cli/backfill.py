"""`atbb backfill [--force catch_up|full_sync]`: gap detection, or the backfill asked for,
run in the foreground with the progress the admin API and page show."""

from __future__ import annotations

import sys

import click
from tqdm import tqdm

from appview.backfill.manager import NOT_NEEDED, BackfillInProgress
from appview.backfill.progress import KINDS, BackfillRun
from appview.bootstrap import bootstrap
from appview.settings import Settings


@click.command()
@click.option("--force", type=click.Choice(KINDS), help="Skip gap detection.")
@click.pass_obj
def backfill(settings: Settings, force: str | None) -> None:
    """Repair the log: catch_up replays the firehose from the stored cursor, full_sync
    re-reads every known repo and rebuilds the read models. Without --force, gap
    detection decides; an interrupted run is resumed first."""
    services = bootstrap(settings)
    try:
        manager = services.backfills
        assert manager is not None
        interrupted = manager.store.unfinished()
        kind = force or (interrupted[-1].type if interrupted else manager.detect())
        if kind is None:
            click.echo(NOT_NEEDED.replace("?force=", "--force "))
            return
        with tqdm(total=0, unit="repo", desc=kind, disable=None, file=sys.stderr,
                  dynamic_ncols=True) as bar:
            def show(run: BackfillRun) -> None:
                bar.total = run.dids_total or None
                bar.n = run.dids_processed
                bar.set_postfix(records=run.records_indexed, errors=run.error_count,
                                refresh=False)
                bar.refresh()

            try:
                run = manager.run(kind, on_progress=show)
            except BackfillInProgress as exc:
                raise click.ClickException(str(exc)) from None
    finally:
        services.close()
    click.echo(f"backfill {run.id} ({run.type}) {run.status}: {run.dids_processed}/"
               f"{run.dids_total} repos, {run.records_indexed} records, "
               f"{run.error_count} errors")
    if run.status != "completed":
        raise click.ClickException(run.error_message or "the backfill failed")
