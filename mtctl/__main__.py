"""Run mtctl as ``python -m mtctl``; also the console script's entry point."""

import sys

INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def main() -> None:
    """Console entry point: Ctrl-C at any moment, even while mtctl starts, is one line and 130.

    This module imports nothing heavy, so an interrupt during the imports below is caught
    here (the command itself reports interrupts in MtctlGroup.invoke).
    """
    try:
        from mtctl.cli.app import main as run

        run()
    except KeyboardInterrupt:
        # Before any command ran (importing, building the parser): nothing was written.
        sys.stderr.write("mtctl: error: interrupted — nothing was written\n")
        _quiet_exit()
    except SystemExit as exc:
        if exc.code == INTERRUPTED:
            _quiet_exit()
        raise


def _quiet_exit() -> None:
    """Exit 130 without the noise of driver objects torn down half-way (psycopg prints
    "Exception ignored ... Pipeline"): the line already printed says what happened."""
    sys.unraisablehook = lambda _unraisable: None
    sys.stderr.flush()
    raise SystemExit(INTERRUPTED)


if __name__ == "__main__":
    main()
