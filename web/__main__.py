"""`python -m web` runs the `atbb` command line."""

from web.cli import main

main()
