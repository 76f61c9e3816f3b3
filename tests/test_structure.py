"""The layout the architecture promises (docs/architecture.md, "Layout"): no import circles among
the project's modules (imports inside functions count too: a late import still ties two modules),
nothing in bench/ imports analysis/, the CLI's module imports no torch, no module of bench/ or
analysis/ passes the size asked of it, and no function passes about a screen."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "analysis", "hydra_plugins")
MAX_FUNCTION_LINES = 60


def modules() -> dict:
    """module name -> path, for every .py file of the project's packages."""
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imports(path: Path, name: str, known: set) -> set:
    """The project modules `path` imports, anywhere in the file (a package's own submodules that it
    imports to register them are edges too)."""
    out = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for t in targets:
            while t and t not in known:
                t = t.rsplit(".", 1)[0] if "." in t else ""
            if t and t != name:
                out.add(t)
    return out


def graph() -> dict:
    mods = modules()
    known = set(mods)
    g = {m: imports(p, m, known) for m, p in mods.items()}
    # a module importing a package's submodule also runs the package: not an edge of its own
    return g


def cycles(g: dict) -> list:
    """Every import cycle (as module lists), by Tarjan's strongly connected components; a package
    importing its own submodules (registration) is not a cycle unless a submodule imports back a
    module that imports the package's registration."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in g:
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    g = graph()
    # A registering package (`bench.cells` imports classic, diagonal, xlstm so that they
    # register) and its submodules importing the package's registry module are one direction:
    # drop the package -> submodule edges that exist only to register, then look for circles.
    for pkg in ("bench.cells", "bench.tasks", "bench.measures", "bench.run"):
        g[pkg] = {m for m in g.get(pkg, ()) if not m.startswith(pkg + ".")}
    found = cycles(g)
    assert not found, f"import circles: {found}"


def test_bench_never_imports_analysis():
    g = graph()
    bad = {m: sorted(t for t in ts if t.startswith("analysis")) for m, ts in g.items() if m.startswith("bench")}
    assert not {m: ts for m, ts in bad.items() if ts}


def test_the_cli_and_the_config_schema_import_no_torch():
    """`python -m bench --help` and `--cfg job` compose configs only: no torch at import."""
    code = ("import sys; import bench.run.cli, bench.config.schema, bench.config.errors; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def function_lengths():
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{path.relative_to(ROOT)}::{node.name}", node.end_lineno - node.lineno + 1


@pytest.mark.parametrize("limit", [MAX_FUNCTION_LINES])
def test_no_function_passes_a_screen(limit):
    long = sorted((n, length) for n, length in function_lengths() if length > limit)
    assert not long, f"functions over {limit} lines: {long}"
