"""The package's shape: no import cycles, and every import points down the layer order.

Imports are read from the source with `ast`, those inside functions included (an import moved
into a function to dodge a cycle still counts). An edge `import a.b` or `from a import b` points
at module `a.b` when it exists, else at package `a` (its `__init__`); a module importing its own
package does not count. Layers are the top-level modules and subpackages of `cartridge_jax`,
bottom to top as docs/architecture.md draws them.
"""

from __future__ import annotations

import ast
import pathlib
import shutil

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "cartridge_jax"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"

# Bottom to top; a layer may import itself and the layers before it.
LAYERS = ("_files", "solvers", "config", "games", "parallel", "run", "model", "opponents", "evaluation",
          "training", "play", "web", "bench", "cli", "__main__")


def module_names(root: pathlib.Path) -> dict[str, pathlib.Path]:
    """{"cartridge_jax.games.base": path, "cartridge_jax.games": path of its __init__, ...}."""
    names = {}
    for path in root.rglob("*.py"):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _package_of(module: str, path: pathlib.Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def import_edges(root: pathlib.Path) -> dict[str, set[str]]:
    """{module: the package's modules it imports}, per the edge rule above."""
    modules = module_names(root)
    edges = {name: set() for name in modules}
    for name, path in modules.items():
        package = _package_of(name, path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target != package:
                    edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) per strongly connected component."""
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                found.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def layer_of(module: str) -> str | None:
    """The layer of "cartridge_jax.<layer>...", None for the package's own __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """"a -> b" for every import of a layer above the importer's (unknown layers too)."""
    problems = []
    for source, targets in sorted(edges.items()):
        source_layer = layer_of(source)
        if source_layer is None:
            continue
        for target in sorted(targets):
            target_layer = layer_of(target)
            if target_layer is None:
                continue
            if source_layer not in LAYERS or target_layer not in LAYERS:
                problems.append(f"{source} -> {target} (a layer missing from LAYERS)")
            elif LAYERS.index(target_layer) > LAYERS.index(source_layer):
                problems.append(f"{source} -> {target}")
    return problems


def test_the_package_has_no_import_cycle():
    assert cycles(import_edges(PACKAGE)) == []


def test_every_import_points_down_the_layers():
    assert upward_imports(import_edges(PACKAGE)) == []


def test_every_layer_exists_and_few_modules_sit_at_the_top():
    present = {path.stem for path in PACKAGE.glob("*.py")} | {
        path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert present - {"__init__"} == set(LAYERS)
    assert len(list(PACKAGE.glob("*.py"))) <= 10


def test_architecture_page_draws_the_layers_in_this_order():
    text = ARCHITECTURE.read_text()
    diagram = text[text.index("## Layers"):]
    positions = [diagram.index(f"{name}/") if f"{name}/" in diagram else diagram.index(name)
                 for name in LAYERS if name != "__main__"]
    assert positions == sorted(positions)


def test_the_checks_catch_a_planted_cycle_and_an_upward_import(tmp_path):
    """The control: both problems planted in a copy of the package are reported."""
    copy = tmp_path / "cartridge_jax"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "refdata"))
    # games/base imports training/loop (upward), inside a function, and loop reaches base.
    base = copy / "games" / "base.py"
    base.write_text(base.read_text() + "\n\ndef _planted():\n"
                    "    from cartridge_jax.training import loop\n    return loop\n")
    edges = import_edges(copy)
    assert any("cartridge_jax.games.base" in cycle for cycle in cycles(edges))
    assert "cartridge_jax.games.base -> cartridge_jax.training.loop" in upward_imports(edges)
    # A cycle within one layer is caught too: two modules that import each other.
    (copy / "run" / "a.py").write_text("import cartridge_jax.run.b\n")
    (copy / "run" / "b.py").write_text("from cartridge_jax.run import a\n")
    assert ["cartridge_jax.run.a", "cartridge_jax.run.b", "cartridge_jax.run.a"] in cycles(
        import_edges(copy))
