"""The package's shape (docs/architecture.md): layers that import downward only, no import cycle, small modules.

Every ``import`` counts, those inside functions too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mrpc_finetune"

LAYERS = [
    ("errors", "hardware", "hub", "flops"),
    ("recipe",),
    ("data", "models", "layer_reinit", "mean_pooling", "metrics", "glue_metric"),
    ("run",),
    ("train", "inference"),
    ("experiments",),
    ("cli", "cli_parser", "__main__"),
]
"""Bottom first. A module may import from its own layer or the layers below (docs/architecture.md draws them)."""

MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The ``mrpc_finetune`` modules ``path`` imports (at the top or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("mrpc_finetune")}
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path.relative_to(PACKAGE.parent)}: relative import; the package imports absolutely")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mrpc_finetune"):
            # ``from mrpc_finetune.data import batching`` imports the module data.batching when it is one
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if module_path(candidate) else node.module)
    return found


def module_path(name: str) -> Path | None:
    base = PACKAGE.parent / name.replace(".", "/")
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m != name} for name, path in modules.items()}


def layer_of(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    if top == "__init__":
        return -1  # the package itself (its version): below everything
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"{module}: in no layer of tests/test_architecture.py LAYERS (docs/architecture.md)")


def test_no_import_cycle():
    edges = graph()
    cycles = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert not cycles, "import cycles:\n  " + "\n  ".join(cycles)


def test_layers_import_downward_only():
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in graph().items()
        for target in targets
        if target != "mrpc_finetune" and layer_of(target) > layer_of(module)
    ]
    assert not upward, "imports against the layers:\n  " + "\n  ".join(sorted(upward))


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_is_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE.parent)}: {lines} lines; split it by what it does"


def test_every_subpackage_says_what_it_holds_and_may_import():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "import" in doc and len(doc.splitlines()) >= 2, f"{init.relative_to(PACKAGE.parent)}: docstring"


def test_every_loop_a_recipe_accepts_is_a_module_with_main():
    """``loop=NAME`` runs ``train/NAME_loop.py``'s ``main``: adding a loop is that file and its name in the schema."""
    import typing

    from mrpc_finetune.recipe.schema import Recipe

    for name in typing.get_args(typing.get_type_hints(Recipe)["loop"]):
        module = PACKAGE / "train" / f"{name}_loop.py"
        assert module.is_file(), f"loop={name}: no {module.relative_to(PACKAGE.parent)}"
        functions = {node.name for node in ast.parse(module.read_text()).body if isinstance(node, ast.FunctionDef)}
        assert "main" in functions, f"{module.name}: no main(recipe, *, on_evaluate=None)"
