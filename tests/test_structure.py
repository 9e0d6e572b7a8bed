"""The package's structure: no import cycle (module- and function-level imports), and generic code
never branches on a family's name (it asks the registry)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "fourd_hub"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The fourd_hub modules an import statement imports (``from . import x`` may name submodules)."""
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] + [f"{target}.{alias.name}" for alias in node.names]


def import_graph() -> dict[str, set[str]]:
    """module -> fourd_hub modules it imports anywhere in its body (functions included)."""
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = _resolve(name, is_package, node)
            else:
                continue
            ancestors = {".".join(name.split(".")[:end]) for end in range(1, name.count(".") + 1)}
            for target in targets:
                # Importing a.b.c runs a/__init__ and a/b/__init__ too, except the packages the
                # importing module is inside (they are being initialised already).
                parts = target.split(".")
                for end in range(1, len(parts) + 1):
                    prefix = ".".join(parts[:end])
                    if prefix in files and prefix != name and prefix not in ancestors:
                        graph[name].add(prefix)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a list of modules), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 40 and "fourd_hub.registry" in graph
    # The package __init__ imports everything; edges into it from submodules would be cycles too.
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_registry_and_the_task_table_import_nothing_of_ours():
    graph = import_graph()
    assert graph["fourd_hub.registry"] == set() and graph["fourd_hub.tasks"] == set()


_FAMILY_COMPARISON = re.compile(r"""(==|!=|\bin\b)\s*\(?\s*["'](fourds|moog)["']|["'](fourds|moog)["']\s*(==|!=)""")


def family_name_comparisons() -> list[str]:
    """Places outside fourd_hub/models/ and the registry that compare something to a family name."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "models" or relative.name == "registry.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _FAMILY_COMPARISON.search(line.split("#")[0]):
                found.append(f"{relative}:{number}: {line.strip()}")
    return found


def test_generic_code_never_compares_against_a_family_name():
    assert family_name_comparisons() == []
    assert _FAMILY_COMPARISON.search('if family == "moog":') and _FAMILY_COMPARISON.search('x in ("fourds", "moog")')


def _weight_loading_calls_without_safetensors(tree: ast.AST) -> list[int]:
    """Lines of ``.from_pretrained(...)`` / ``from_pretrained(...)`` calls that load weights without ``use_safetensors=True``.

    Configuration loads carry no weights: calls inside a ``*Config`` class, or on a receiver whose
    source names a config (``AutoConfig``, ``config_class``), are not weight loads.
    """
    lines = []

    def visit(node: ast.AST, in_config_class: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, child.name.endswith("Config"))
                continue
            if isinstance(child, ast.Call):
                func = child.func
                name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
                receiver = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
                if name == "from_pretrained" and not in_config_class and "config" not in receiver.lower():
                    safe = any(
                        k.arg == "use_safetensors" and isinstance(k.value, ast.Constant) and k.value.value is True
                        for k in child.keywords
                    )
                    if not safe:
                        lines.append(child.lineno)
            visit(child, in_config_class)

    visit(tree, False)
    return lines


def test_every_weight_load_in_the_package_passes_use_safetensors():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [f"{path.relative_to(REPO_ROOT)}:{line}" for line in _weight_loading_calls_without_safetensors(tree)]
    assert not offenders, f"from_pretrained without use_safetensors=True: {offenders}"


def test_the_safetensors_check_finds_an_unsafe_call():
    tree = ast.parse("model = FourDSModel.from_pretrained(path)\nconfig = AutoConfig.from_pretrained(path)\nsafe = X.from_pretrained(p, use_safetensors=True)")
    assert _weight_loading_calls_without_safetensors(tree) == [1]
