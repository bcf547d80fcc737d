"""``python -m mltrail`` runs the CLI."""

from mltrail.cli import main

main()
