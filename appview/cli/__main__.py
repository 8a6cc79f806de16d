"""`python -m appview.cli`: the commands that need no web front end (ADR 0001)."""

from appview.cli import main

main()
