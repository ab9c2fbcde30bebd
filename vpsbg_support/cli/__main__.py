"""``python -m vpsbg_support.cli``: the ``vpsbg-support`` command."""

from vpsbg_support.cli import main

raise SystemExit(main())
