"""`python -m vidroute`: the same command line as the `vidroute` script."""

from vidroute.cli import main

main()
