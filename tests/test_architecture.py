"""The layout's rules, checked on the source: imports flow one way and never in a circle.

cli -> engine/serve/export -> models, data -> config, errors. Every import counts, including those inside
functions: a lazy import still ties two modules together.
"""

import ast
from pathlib import Path

import vidcls

SOURCE = Path(vidcls.__file__).parent
# Package -> packages it must never import.
FORBIDDEN = {
    "data": {"models", "engine", "serve", "export", "cli"},
    "models": {"data", "engine", "serve", "export", "cli"},
    "engine": {"serve", "export", "cli"},
    "serve": {"export", "cli"},
    "export": {"serve", "cli"},
    "settings": {"models", "engine", "serve", "export", "cli"},  # the flag groups several commands share
    "config": {"data", "models", "engine", "serve", "export", "cli"},
    "errors": {"data", "models", "engine", "serve", "export", "cli", "config"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in SOURCE.rglob("*.py")}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The vidcls modules ``path`` imports (``from vidcls.data import clips`` counts as vidcls.data.clips)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                      for alias in node.names}  # fmt: skip
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, set(known)) - {name} for name, path in known.items()}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_imports_flow_one_way():
    wrong = [
        f"{module} imports {imported}"
        for module, imported_modules in import_graph().items()
        for imported in imported_modules
        if layer(imported) in FORBIDDEN.get(layer(module), set())
    ]
    assert not wrong, "\n".join(sorted(wrong))


def test_nothing_outside_cli_imports_cli():
    wrong = [
        f"{module} imports {imported}"
        for module, imported_modules in import_graph().items()
        for imported in imported_modules
        if layer(imported) == "cli" and layer(module) != "cli" and module != "vidcls.__main__"
    ]
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles():
    graph = import_graph()
    cycles = []
    state: dict[str, str] = {}  # module -> "open" while on the path, "done" once explored

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph[module]):
            if imported == "vidcls":  # the package's lazy public names, not a dependency of what it names
                continue
            if state.get(imported) == "open":
                cycles.append(" -> ".join([*path[path.index(imported) :], imported]))
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def test_the_checks_see_the_imports():
    """The graph is built from the real source: known edges are in it (so the rules above can fail)."""
    graph = import_graph()
    assert "vidcls.data.clips" in graph["vidcls.engine.predict"]
    assert "vidcls.errors" in graph["vidcls.data.decode"]
    assert "vidcls.engine.predict" in graph["vidcls.cli.predict"]  # an import inside run()
