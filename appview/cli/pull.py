"""`atbb events pull URL`: another appview's log appended to this one over HTTP,
resuming where the last pull stopped (``appview.pull``)."""

from __future__ import annotations

import sys
import time

import click
from tqdm import tqdm

from appview.bootstrap import bootstrap
from appview.pull import PullError, PullReport, pull
from appview.settings import Settings


@click.command("pull")
@click.argument("url")
@click.option("--token", help="An admin token of the source appview (manageForum).")
@click.option("--public", is_flag=True,
              help="Ask for the public view only (what any reader could see).")
@click.option("--page", type=click.IntRange(min=1), default=50_000, show_default=True,
              help="Events asked for in one request.")
@click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True,
              help="Requests that fail are tried again this many times in a row.")
@click.pass_obj
def pull_command(settings: Settings, url: str, token: str | None, public: bool, page: int,
                 retries: int) -> None:
    """Append the log of the appview at URL (its base URL) to this one, from where the
    last pull from URL stopped, with a progress bar. An interrupted pull loses nothing:
    run it again and it resumes."""
    services = bootstrap(settings)
    bar = tqdm(total=None, unit="ev", desc="pulling", disable=None, file=sys.stderr,
               dynamic_ncols=True, unit_scale=True)
    failures = 0
    report: PullReport | None = None
    earlier = PullReport(source=url)  # what attempts before a failure pulled
    try:
        while True:
            last_seen = PullReport(source=url)

            def progress(current: PullReport) -> None:
                nonlocal last_seen
                last_seen = current
                bar.total = max(current.source_head - current.started_after, 1)
                bar.n = current.position - current.started_after
                bar.refresh()

            try:
                report = pull(services.event_log, url, token=token, public=public,
                              page=page, progress=progress)
                break
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="URL") from None
            except PullError as exc:
                earlier.received += last_seen.appended + last_seen.duplicates
                earlier.appended += last_seen.appended
                earlier.duplicates += last_seen.duplicates
                failures += 1
                if failures > retries:
                    raise click.ClickException(
                        f"{exc}; what was pulled is kept: run the pull again to resume"
                    ) from None
                click.echo(f"{exc}; trying again", err=True)
                time.sleep(min(2 ** failures, 30))
    finally:
        bar.close()
        services.close()
    received = earlier.received + report.received
    click.echo(f"pulled {received} events from {report.source} "
               f"(appended {earlier.appended + report.appended}, already held "
               f"{earlier.duplicates + report.duplicates}); "
               f"the local log holds the source's up to position {report.position}")
