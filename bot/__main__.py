"""`python -m bot …`: the command line (see `infodesk.cli`, the composition root)."""

from infodesk.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
