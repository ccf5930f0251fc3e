"""CLI subcommands, one module each (see :mod:`tconv.cli`)."""
