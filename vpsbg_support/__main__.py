"""``python -m vpsbg_support``: the ``vpsbg-support`` command."""

from vpsbg_support.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
