"""``python -m qsolver``: the command line (see :mod:`qsolver.cli`)."""
from .cli import main

raise SystemExit(main())
