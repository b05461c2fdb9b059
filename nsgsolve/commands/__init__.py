"""One module per CLI subcommand; see :mod:`nsgsolve.cli`."""
