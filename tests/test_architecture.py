"""The package's import graph: no cycles anywhere, and runtime code never imports a migration.

Every import counts, including those inside functions (lazy imports still tie two modules
together); relative imports are resolved against the importing module's package.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import mtctl

ROOT = Path(mtctl.__file__).parent
PACKAGE = "mtctl"
MIGRATIONS = f"{PACKAGE}.store.migrations"


def module_name(path: Path, root: Path = ROOT.parent) -> str:
    """The dotted name of a source file under ROOT (the directory that holds the package)."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that NAME imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        # `from a.b import c` imports a.b.c when that is a module, and a.b either way.
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            for alias in node.names:
                add(f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in modules else stem)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            add(node.args[0].value)  # importlib.import_module("mtctl....")
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports."""
    modules = all_modules()
    return {name: imported(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [shortest_cycle(graph, set(c)) for c in components]


def shortest_cycle(graph: dict[str, set[str]], members: set[str]) -> list[str]:
    """A shortest cycle through the component's first module, as a path back to itself."""
    start = min(members)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & members):
                if nxt == start:
                    return paths[node] + [start]
                if nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def test_the_graph_sees_lazy_relative_and_importlib_imports(tmp_path):
    """The walker itself: a cycle hidden in a function, a relative import and import_module."""
    pkg = tmp_path / "mtctl"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from . import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from mtctl.sub.c import x\n")
    (pkg / "sub" / "c.py").write_text("import importlib\nimportlib.import_module('mtctl.sub.a')\n")
    modules = {module_name(p, tmp_path): p for p in sorted(pkg.rglob("*.py"))}
    graph = {n: imported(n, p, modules) for n, p in modules.items()}
    assert graph["mtctl.sub.a"] == {"mtctl.sub.b"}
    assert graph["mtctl.sub.b"] == {"mtctl.sub.c"}
    assert graph["mtctl.sub.c"] == {"mtctl.sub.a"}
    assert cycles(graph) == [["mtctl.sub.a", "mtctl.sub.b", "mtctl.sub.c", "mtctl.sub.a"]]


def test_no_import_cycle_anywhere():
    """Two modules that import each other (even lazily) cannot be read or tested apart."""
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" → ".join(c) for c in found)


def test_runtime_code_never_imports_a_migration():
    """A migration is frozen history: runtime code that reads one changes when history can't."""
    offenders = sorted(
        f"{name} imports {target}"
        for name, targets in import_graph().items() if not name.startswith(MIGRATIONS)
        for target in targets if target.startswith(MIGRATIONS + ".")
    )
    assert not offenders, "\n".join(offenders)


def test_migrations_import_no_runtime_code():
    """A migration runs the same in every future mtctl: it imports alembic and SQLAlchemy only.

    env.py is Alembic's harness, not history: it hands the current tables to autogenerate.
    """
    graph = import_graph()
    offenders = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if name.startswith(MIGRATIONS + ".versions.")
        for target in targets
    )
    assert any(name.startswith(MIGRATIONS + ".versions.0001") for name in graph)
    assert not offenders, "\n".join(offenders)


MAX_LINES = 400
LONG_BECAUSE = "Long because:"  # a module docstring's paragraph that says why it is longer


def stated_reason(path: Path) -> str:
    """The reason a module's docstring gives for its length ('' when it gives none)."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"), str(path))) or ""
    for paragraph in docstring.split("\n\n"):
        if paragraph.strip().startswith(LONG_BECAUSE):
            return " ".join(paragraph.strip().removeprefix(LONG_BECAUSE).split())
    return ""


def test_stated_reason_reads_the_marked_paragraph(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""Title.\n\nLong because: one scanner shares one cursor\nacross its '
                      'parts.\n"""\n', encoding="utf-8")
    assert stated_reason(module) == "one scanner shares one cursor across its parts."
    module.write_text('"""Title. Long because: not at a paragraph start."""\n', encoding="utf-8")
    assert stated_reason(module) == ""


def test_no_module_is_long_without_a_stated_reason():
    """A newcomer reads a module whole: past ~400 lines it should be split, or say why not
    in a docstring paragraph starting 'Long because:' (at least a few words of reason)."""
    offenders = []
    for name, path in all_modules().items():
        if name.startswith(MIGRATIONS + ".versions."):
            continue  # frozen history, never edited
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES and len(stated_reason(path).split()) < 5:
            offenders.append(f"{name}: {lines} lines")
    assert not offenders, (f"modules over {MAX_LINES} lines without a '{LONG_BECAUSE}' "
                           "paragraph in their docstring:\n" + "\n".join(offenders))


LAYERS = {  # what each layer may import from the package (besides itself and mtctl.errors)
    "mtctl.domain": (),
    "mtctl.formats": ("mtctl.domain",),
    "mtctl.store": ("mtctl.domain", "mtctl.formats", "mtctl.settings", "mtctl.files"),
}


def test_imports_go_one_way_cli_store_formats_domain():
    """domain imports no other layer; formats only the domain; store never the CLI."""
    offenders = sorted(
        f"{name} imports {target}"
        for name, targets in import_graph().items()
        for layer, allowed in LAYERS.items() if name.startswith(layer + ".") or name == layer
        for target in targets
        if not target.startswith((layer, "mtctl.errors", *allowed)) and target != PACKAGE
    )
    assert not offenders, "\n".join(offenders)


def test_the_version_is_written_once_in_pyproject():
    """--version and the Kamailio export's header read the package metadata; no module keeps
    a copy of the version that could fall behind."""
    pyproject = tomllib.loads((ROOT.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert version("mtctl") == pyproject["project"]["version"]
    result = subprocess.run([sys.executable, "-m", "mtctl", "--version"],  # noqa: S603
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"mtctl {version('mtctl')}\n"
    copies = [f"{name}: {match.group(0)}" for name, path in all_modules().items()
              for match in re.finditer(r"__version__\s*=.*", path.read_text(encoding="utf-8"))]
    assert not copies, copies
