"""Run mtctl as ``python -m mtctl``; also the console script's entry point."""

from __future__ import annotations

import errno
import io
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
NOTHING_WRITTEN = "mtctl: error: interrupted — nothing was written\n"


def main() -> None:
    """Console entry point: Ctrl-C at any moment after Python started is one line and 130."""
    # While mtctl imports, nothing can have been written: exit at once. (A KeyboardInterrupt
    # raised there can be swallowed by importlib's callbacks and the command would go on.)
    _on_interrupt(_exit_while_starting)
    if sys.stdout is None:  # started with stdout closed (`mtctl ... >&-`)
        sys.stdout = _ClosedOutput()
    _plain_help_in_pipes()
    from mtctl.cli.app import main as run
    from mtctl.cli.app import report_interrupt

    _on_interrupt(signal.default_int_handler)
    try:
        run()
    except KeyboardInterrupt:  # outside any command (cannot normally get here)
        report_interrupt()
        _quiet_exit()
    except SystemExit as exc:
        if exc.code == INTERRUPTED:  # also Typer's own, silent, 130 around the command
            report_interrupt()
            _quiet_exit()
        raise


class _ClosedOutput(io.TextIOBase):
    """Standard output that was closed: writing to it is an error mtctl reports in one line
    (a command that prints nothing still works)."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")


def _plain_help_in_pipes() -> None:
    """Help and usage errors as plain text when stdout is not a terminal, like every other
    output (SPEC §12): Typer's Rich formatting imports Rich's Markdown, Syntax and Traceback,
    more than half of `mtctl --help`'s start-up. TYPER_USE_RICH, when set, decides."""
    if "TYPER_USE_RICH" in os.environ or sys.stdout is None or sys.stdout.isatty():
        return
    os.environ["TYPER_USE_RICH"] = "0"  # read once, when typer.core is imported
    try:
        import typer.core  # noqa: F401
    finally:
        del os.environ["TYPER_USE_RICH"]  # not passed on to anything mtctl starts


def _on_interrupt(handler: Callable[[int, FrameType | None], object]) -> None:
    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (mtctl embedded somewhere): leave it alone
        pass


def _exit_while_starting(_signum: int, _frame: FrameType | None) -> None:
    os.write(2, NOTHING_WRITTEN.encode())
    os._exit(INTERRUPTED)


def _quiet_exit() -> None:
    """Exit 130 without the noise of driver objects torn down half-way (psycopg prints
    "Exception ignored ... Pipeline"): the line already printed says what happened."""
    sys.unraisablehook = lambda _unraisable: None
    sys.stderr.flush()
    raise SystemExit(INTERRUPTED)


if __name__ == "__main__":
    main()
