"""`atbb devnet`: the local AT Protocol network on its own."""

from __future__ import annotations

import click

from appview.cli.storage import StandaloneCommand


@click.command(cls=StandaloneCommand)
@click.option("--seed", type=int, default=1, show_default=True,
              help="Random seed of the seeded forum.")
@click.option("--size", type=click.Choice(["small", "large"]), default="small",
              show_default=True)
@click.option("--empty", is_flag=True, help="Start the network without a seeded forum.")
@click.option("--pds-hosts", type=int, default=1, show_default=True)
@click.option("--plc-port", type=int, default=0, help="0 picks a free port.")
@click.option("--jetstream-port", type=int, default=0, help="0 picks a free port.")
def devnet(seed: int, size: str, empty: bool, pds_hosts: int, plc_port: int,
           jetstream_port: int) -> None:
    """Run the local AT Protocol network alone (PLC, PDS hosts, Jetstream v1), print its
    URLs and the accounts' handles and app passwords, until Ctrl-C (SIGINT) or SIGTERM."""
    # Imported here: the devnet pulls in the atproto client (about 1.5 s), which every
    # other command (and each `atbb ingest` restart) does without.
    from appview.devnet.network import run_devnet

    run_devnet(
        seed=None if empty else seed,
        size="large" if size == "large" else "small",
        pds_hosts=pds_hosts,
        plc_port=plc_port,
        jetstream_port=jetstream_port,
        via="direct" if size == "large" else "xrpc",
    )
