"""The mtctl command: global options, command groups, and the one place errors become exit codes."""

import errno
import sys
from typing import Annotated, Any, NoReturn

import typer

# Typer (0.26-0.28, held below 0.29 in pyproject.toml) carries its own Click, typer._click:
# its usage errors are these classes, not the click package's.
from typer._click.core import Context
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from mtctl.cli import audit as audit_cmd
from mtctl.cli import (
    calls,
    catalog,
    check,
    config,
    db,
    extensions,
    keys,
    phones,
    provision,
    ringsim,
    users,
    webcall,
)
from mtctl.cli import config_file as config_file_cmd
from mtctl.cli.common import Globals
from mtctl.errors import ExitCode, MtctlError


class MtctlGroup(TyperGroup):
    """Maps every MtctlError to its message on stderr and its exit code (SPEC §6)."""

    argv: list[str] = []  # this run's arguments, for usage errors raised without a context

    def main(self, args: Any = None, *rest: Any, **kwargs: Any) -> Any:
        """Refuse arguments that are not UTF-8 before anything reads them."""
        argv = sys.argv[1:] if args is None else list(args)
        bad = next((arg for arg in argv if isinstance(arg, str) and not _is_utf8(arg)), None)
        if bad is not None:
            from mtctl.cli import output

            shown = bad.encode("utf-8", "surrogateescape")
            output.error(f"argument '{_shorten(repr(shown)[2:-1])}' is not valid UTF-8 — "
                         "give every argument in UTF-8 (check the terminal's or the "
                         "script's encoding)")
            raise SystemExit(int(ExitCode.USAGE))
        self.argv = argv  # for usage errors that Click raises without their command
        try:
            return super().main(argv, *rest, **kwargs)
        except OSError as exc:  # writing stdout failed (help and --version included)
            if exc.errno not in _OUTPUT_FAILURES:  # EPIPE too: Click ends a closed pipe quietly
                raise
            _output_failed(exc)
            raise SystemExit(int(ExitCode.RULE)) from None

    def make_context(self, info_name: str | None, args: list[str],
                     parent: Context | None = None, **extra: Any) -> Context:
        try:  # the top level's own options and the command's name
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as exc:
            _usage_error(exc)

    def invoke(self, ctx: Any) -> Any:
        from mtctl.cli import output

        _forget_writes()
        _Interrupt.reported = False
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a full disk says so now, while it can still be reported
            return result
        except typer.Exit:
            sys.stdout.flush()
            raise
        except UsageError as exc:  # a subcommand's arguments and options
            _usage_error(exc, self)
        except MtctlError as exc:
            output.error(str(exc))
            raise typer.Exit(int(exc.exit_code)) from None
        except UnicodeError as exc:
            if not _bad_input(exc):
                raise
            output.error("the input is not valid UTF-8 — give text (arguments, standard input, "
                         "files) in UTF-8")
            raise typer.Exit(int(ExitCode.USAGE)) from None
        except ValueError as exc:
            if str(exc) != "embedded null byte":  # os.stat/open of a path with a NUL in it
                raise
            output.error("a file name contains a NUL character — check the path")
            raise typer.Exit(int(ExitCode.USAGE)) from None
        except KeyboardInterrupt:
            report_interrupt()
            raise typer.Exit(INTERRUPTED) from None


INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def _usage_error(exc: UsageError, root: MtctlGroup | None = None) -> NoReturn:
    """Click's usage errors (an unknown option or command, a missing or extra argument) in
    mtctl's one line with a hint, instead of Click's four (usage, "Try", blank, error)."""
    if isinstance(exc, NoArgsIsHelpError):  # `mtctl ext`: the help, as asked
        raise exc
    from mtctl.cli import output

    names: list[str] = []
    ctx = exc.ctx
    while ctx is not None and ctx.parent is not None:  # the root's name is the program's
        names.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    if exc.ctx is None and root is not None:  # an option's missing value, for one
        names = _command_names(root, getattr(root, "argv", []))
    message = exc.format_message().strip().rstrip(".")
    output.error(f"{message[:1].lower()}{message[1:]} — see: "
                 f"{' '.join(['mtctl', *names, '--help'])}")
    raise SystemExit(exc.exit_code)


def _command_names(root: Any, args: list[str]) -> list[str]:
    """The names of the command that ARGS run (`keys rotate`), read as Click would: options
    of each group are skipped with their values."""
    names: list[str] = []
    command, rest = root, list(args)
    while rest and hasattr(command, "commands"):
        arg = rest.pop(0)
        if arg == "--":
            break
        if arg.startswith("-"):
            option = next((p for p in command.params if arg in getattr(p, "opts", ())), None)
            if option is not None and not getattr(option, "is_flag", True) and rest:
                rest.pop(0)  # its value
            continue
        if arg not in command.commands:
            break
        names.append(arg)
        command = command.commands[arg]
    return names
# Writing stdout failed for a reason of the machine, not of the command: one line, exit 1.
_OUTPUT_FAILURES = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EBADF}


def _output_failed(exc: OSError) -> None:
    """Say that the output could not be written, and let nothing retry it at exit."""
    import os

    from mtctl.cli import output

    reason = (exc.strerror or "write error").lower()
    output.error(f"cannot write the output: {reason} — free some space, or write it "
                 "elsewhere" if exc.errno != errno.EBADF else
                 f"cannot write the output: {reason} — give mtctl an open standard output")
    try:  # what is still buffered would fail again when Python flushes it at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no file descriptor (tests, closed stdout)
        pass


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # Python holds non-UTF-8 bytes as lone surrogates
        return False
    return True


def _shorten(text: str, most: int = 60) -> str:
    return text if len(text) <= most else text[:most] + "…"


def _bad_input(exc: UnicodeError) -> bool:
    """A decode error, or an encode error on surrogates: bytes read that were not UTF-8."""
    return isinstance(exc, UnicodeDecodeError) or (
        isinstance(exc, UnicodeEncodeError) and "surrogates not allowed" in str(exc.reason))


def _write_log() -> Any:
    # Imported only if a command opened the store: otherwise nothing can have been written.
    db = sys.modules.get("mtctl.store.db")
    return getattr(db, "WRITES", None)


def _forget_writes() -> None:
    log = _write_log()
    if log is not None:
        log.reset()


class _Interrupt:
    reported = False


def report_interrupt() -> None:
    """Say once what an interrupt left in the store."""
    from mtctl.cli import output

    if not _Interrupt.reported:
        _Interrupt.reported = True
        output.error(interrupted_message())


def interrupted_message() -> str:
    """What an interrupt left in the store, told truly."""
    log = _write_log()
    if log is None or (log.committed == 0 and not log.committing):
        return "interrupted — nothing was written"
    if log.committing:
        return ("interrupted while the change was being committed — it may or may not be in "
                "the store: look (e.g. mtctl audit) before running it again")
    if log.committed == 1 and not (log.open or log.rolled_back):
        return ("interrupted after the change was committed — it is in the store "
                "(mtctl audit shows it)")
    # Several transactions (key rotation's batches), or a later one rolled back.
    return (f"interrupted after {log.committed} of the command's write transactions had been "
            "committed "
            "(mtctl audit shows them); the rest was not done — run the command again to finish")


app = typer.Typer(
    cls=MtctlGroup,
    name="mtctl",
    help="Administer Multiterminal PBX extensions: phones, who rings, secure SIP keys.\n\n"
         "Example: mtctl --db sqlite:///pbx.db ext list",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=True,  # --install-completion, --show-completion (bash, zsh, fish)
)


def _version(value: bool) -> None:
    if value:
        from mtctl import __version__

        typer.echo(f"mtctl {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    db_url: Annotated[str | None, typer.Option(
        "--db", metavar="URL", envvar="MTCTL_DATABASE_URL", show_envvar=True,
        help="Store URL (default: a SQLite file in your data directory).")] = None,
    actor: Annotated[str | None, typer.Option(
        help="Name recorded in the audit trail (default: your OS user).")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version.")] = False,
) -> None:
    """Administer Multiterminal PBX extensions."""
    ctx.obj = Globals(db=db_url, actor=actor)


for sub in (db, config, catalog, extensions, users, phones, keys, provision, webcall, calls):
    sub.register(app)
ringsim.register(app)
check.register(app)
audit_cmd.register(app)
config_file_cmd.register(app)


def main() -> None:
    """Console entry point."""
    app()
