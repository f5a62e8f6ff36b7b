"""The engine's layers hold: what ``ls engine/`` shows is how the code depends.

* no import cycle inside ``engine/`` (function-level imports included: a
  cycle held together by imports inside functions is still a cycle);
* each layer imports only the layers below it, and the engine never imports
  Qt, pyqtgraph or the window (the contracts in ``.importlinter``, checked by
  import-linter);
* imports sit at the top of a module; the only exceptions are heavy optional
  libraries loaded on first use, each marked ``# lazy: <why>``, at most
  :data:`MAX_LAZY` of them.
"""
import ast
import os
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"
MAX_LAZY = 10
LAZY_MARK = "# lazy:"


def _cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in graph.modules or graph.is_module_squashed(imported):
                continue   # an external package
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module.startswith("engine") and module not in index and not graph.is_module_squashed(module):
            visit(module)
    return found


def _describe(graph, component: list[str]) -> str:
    """One loop through the component, with the line of every import in it."""
    start = component[0]
    succ = next(m for m in sorted(graph.find_modules_directly_imported_by(start)) if m in component)
    chain = (start,) + graph.find_shortest_chain(succ, start)
    lines = []
    for importer, imported in zip(chain, chain[1:]):
        detail = graph.get_import_details(importer=importer, imported=imported)
        where = f"line {detail[0]['line_number']}: {detail[0]['line_contents']}" if detail else ""
        lines.append(f"  {importer} -> {imported}   ({where})")
    return f"cycle through {', '.join(component)}:\n" + "\n".join(lines)


def test_no_import_cycle_inside_the_engine():
    graph = grimp.build_graph("engine", cache_dir=None)
    cycles = _cycles(graph)
    assert not cycles, "import cycles in engine/:\n" + "\n".join(_describe(graph, c) for c in cycles)


def test_layers_and_headless_contracts_are_kept():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                          "lint_imports_command()", "--no-cache", "--no-logo"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"import-linter contracts (.importlinter) broken:\n{out.stdout[-6000:]}{out.stderr[-2000:]}"
    assert "0 broken" in out.stdout


def function_level_imports() -> list[tuple[str, int, str]]:
    """(file, line, source line) of every import inside a function or class body in engine/."""
    found = []
    for path in sorted(ENGINE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        tree = ast.parse(source, str(path))
        for scope in ast.walk(tree):
            if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue
            for node in ast.walk(scope):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    found.append((str(path.relative_to(ROOT)), node.lineno, lines[node.lineno - 1].strip()))
    return sorted(set(found))


def test_imports_sit_at_module_level_unless_marked_lazy():
    found = function_level_imports()
    unmarked = [f"{file}:{line}: {text}" for file, line, text in found
                if LAZY_MARK not in text or not text.split(LAZY_MARK, 1)[1].strip()]
    assert not unmarked, ("imports inside functions in engine/ (move them to the top of the module; only a heavy "
                          f"optional library may load on first use, marked '{LAZY_MARK} <why>'):\n"
                          + "\n".join(unmarked))
    lazy = [f"{file}:{line}" for file, line, text in found]
    assert len(lazy) <= MAX_LAZY, f"{len(lazy)} lazy imports, at most {MAX_LAZY}: {', '.join(lazy)}"
