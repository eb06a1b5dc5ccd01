"""Run mtctl as ``python -m mtctl``."""

from mtctl.cli.app import main

if __name__ == "__main__":
    main()
