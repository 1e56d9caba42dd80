"""`python -m remem` runs the `remem` command."""

from remem.cli.main import cli

cli()
