"""`mtctl apply` and `mtctl export`: the store as a declarative TOML file."""

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mtctl.cli import output
from mtctl.cli.common import JsonOpt, reading, whole_number, writing

if TYPE_CHECKING:
    from mtctl.domain.plan import Plan
    from mtctl.formats.pbx_file.load import ParsedConfig

SYMBOL = {"add": "+", "change": "~", "remove": "-"}
MAX_SHOWN = 1000  # problems printed for people: a file of 100,000 broken tables stays readable


def apply(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", help="TOML file; - reads stdin.")],
    dry_run: Annotated[bool, typer.Option("--dry-run",
                                          help="Print the plan; write nothing.")] = False,
    prune: Annotated[bool, typer.Option("--prune", help="Remove what the file does not name "
                                        "(seeded models and templates are reset).")] = False,
    detailed_exitcode: Annotated[bool, typer.Option(
        "--detailed-exitcode", help="With --dry-run: exit 0 when the store matches the file, "
        "6 when there are changes to make, 1 on errors.")] = False,
    as_json: JsonOpt = False,
    max_size: Annotated[int, typer.Option("--max-size", metavar="MIB", help=(
        "Refuse a file larger than this many MiB (1–1024)."), parser=whole_number(
        "--max-size", 1, 1024, "use 1 to 1024 MiB"))] = 64,
) -> None:
    """Make the store match a config file: all of it is checked first, then written at once.

    Example: mtctl apply pbx.toml --dry-run --detailed-exitcode
    """
    from mtctl.domain.plan import Plan
    from mtctl.errors import ExitCode, UsageError

    if detailed_exitcode and not dry_run:
        raise UsageError("--detailed-exitcode needs --dry-run",
                         "add --dry-run to ask whether the store matches the file")
    from mtctl.formats.pbx_file.load import parse_config
    from mtctl.store.apply import apply_config, load_state

    with gc_paused():
        # the store is committed (or let go) before anything is printed
        with _busy("checking " + _source(file)), ExitStack() as store:
            ready: list[tuple[Any, str, Any]] = []  # the transaction, the actor, the state

            def read_store() -> None:
                """Open and read the store: while a large file is parsed on another core."""
                opened = store.enter_context(reading(ctx) if dry_run else writing(ctx))
                conn, actor = opened if isinstance(opened, tuple) else (opened, "")
                ready.append((conn, actor, load_state(conn)))

            max_bytes = max_size * 2**20
            parsed = parse_config(_read(file, max_bytes + 1), max_bytes=max_bytes,
                                  meanwhile=read_store)
            plan = Plan(problems=parsed.problems)
            if not parsed.is_broken("*"):
                if not ready:
                    read_store()
                conn, actor, state = ready[0]
                plan = apply_config(conn, parsed, actor=actor, prune=prune, dry_run=dry_run,
                                    state=state)
        _render(plan, parsed, source=_source(file), dry_run=dry_run, as_json=as_json)
    if plan.problems:
        raise typer.Exit(ExitCode.RULE)
    if detailed_exitcode and plan.changes:
        raise typer.Exit(ExitCode.PENDING)


def export(
    ctx: typer.Context,
    to: Annotated[str | None, typer.Option("-o", "--output", metavar="FILE",
                                           help="Write here instead of stdout (- is stdout).")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the store as a config file that mtctl apply accepts; never keys or tokens.

    Example: mtctl export -o pbx.toml
    """
    from mtctl.formats.pbx_file.render import to_toml
    from mtctl.store.export import export_document

    if ctx.invoked_subcommand is not None:  # `export kamailio`: its own options, not these
        if to is not None or as_json:
            from mtctl.errors import UsageError

            raise UsageError(f"-o/--json belong to the TOML export, not to export "
                             f"{ctx.invoked_subcommand}",
                             f"see: mtctl export {ctx.invoked_subcommand} --help")
        return
    path = _output_path(to)
    with reading(ctx) as conn:
        doc = export_document(conn)
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n" if as_json else to_toml(doc)
    if path is None:
        sys.stdout.write(text)
        return
    _write(path, text)
    output.note(f"wrote {path}")


def _output_path(to: str | None) -> Path | None:
    """The file -o names (None: stdout), refused before the store is read if it cannot be one."""
    from mtctl.errors import UsageError

    if to is None or to == "-":
        return None
    hint = "give a file name, e.g. -o pbx.toml, or leave -o out to write to stdout"
    if not to.strip():
        raise UsageError("-o is empty", hint)
    path = Path(to)
    try:
        is_dir = path.is_dir()
    except OSError as exc:  # a name too long, a NUL...
        raise UsageError(f"cannot use -o: {exc.strerror or exc}", hint) from None
    except ValueError:  # an embedded NUL
        raise UsageError("-o contains a NUL character", hint) from None
    if is_dir or to.endswith("/"):
        raise UsageError(f"-o {to[:80]} is a directory", hint)
    return path


def _source(file: str) -> str:
    return "<stdin>" if file == "-" else file


def _read(file: str, limit: int) -> bytes:
    """At most limit bytes: a larger file is refused without reading it all."""
    from mtctl.errors import UsageError

    if file == "-":
        return sys.stdin.buffer.read(limit)
    if "\x00" in file:  # open() would raise ValueError, not OSError
        raise UsageError("the file name contains a NUL character", "check the path")
    try:
        with open(file, "rb") as stream:
            return stream.read(limit)
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}", "check the path") from None


def _write(path: Path, text: str) -> None:
    """Replace the file whole, so that a reader never sees half of it (none on a failure)."""
    from mtctl.files import atomic_write

    atomic_write(path, text, private=False, hint="check the path")  # it holds no key or token


@contextmanager
def gc_paused() -> Iterator[None]:
    """For one apply: millions of small objects, none of them cyclic, so the cycle collector
    would only cost time."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _busy(message: str) -> Iterator[None]:
    """A spinner on a terminal; nothing when stderr is not one."""
    status = output.err().status(message) if sys.stderr.isatty() else nullcontext()
    with status:
        yield


def _render(plan: "Plan", parsed: "ParsedConfig", *, source: str, dry_run: bool,
            as_json: bool) -> None:
    from mtctl.formats.pbx_file.load import add_lines

    add_lines(plan.problems, parsed.text)
    summary = plan.summary()
    if as_json:
        output.print_json({
            "file": source, "dry_run": dry_run,
            "applied": not dry_run and not plan.problems,
            "summary": summary if not plan.problems else {k: 0 for k in summary},
            "changes": [] if plan.problems else [c.as_dict() for c in plan.changes],
            "errors": [p.as_dict() for p in plan.problems]})
        return
    if plan.problems:
        for problem in plan.problems[:MAX_SHOWN]:
            output.error(problem.text(source))
        more = len(plan.problems) - MAX_SHOWN
        shown = f" (the first {MAX_SHOWN} shown; --json lists all)" if more > 0 else ""
        output.note(f"{len(plan.problems)} problem(s) in {source}{shown}; nothing was written")
        return
    output.write_lines(_line(change) for change in plan.changes)
    counts = f"{summary['add']} to add, {summary['change']} to change, " \
             f"{summary['remove']} to remove"
    if not plan.changes:
        output.note("no changes: the store matches " + source)
    elif dry_run:
        output.note(f"dry run: {counts}; nothing was written")
    else:
        output.note(f"applied {source}: " + counts.replace(" to ", " ").replace(
            "add", "added").replace("change", "changed").replace("remove", "removed"))


def _line(change: Any) -> str:
    text = f"{SYMBOL[change.action]} {change.object}"
    if change.action == "change":
        text += ": " + ", ".join(f"{name} {_value(before)} → {_value(after)}"
                                 for name, (before, after) in change.diff.items())
    return text + "\n"


def _value(value: Any) -> str:
    return json.dumps(list(value) if isinstance(value, tuple) else value, ensure_ascii=False)


def register(app: typer.Typer) -> None:
    app.command("apply")(apply)
    from mtctl.cli.kamailio import export_kamailio

    # `mtctl export` writes TOML; `mtctl export kamailio` is a subcommand of the same group.
    export_app = typer.Typer(no_args_is_help=False, add_completion=False,
                             subcommand_metavar="[kamailio ...]")
    export_app.callback(invoke_without_command=True)(export)
    export_app.command("kamailio")(export_kamailio)
    app.add_typer(export_app, name="export")
