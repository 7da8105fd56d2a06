"""Layout rules of src/faceclust, checked on the sources with ``ast``.

* No module imports a ``_private`` name from another module (a private *submodule* such as
  ``methods._auto`` may be imported; its public names are the API between modules), nor
  reads one as an attribute of an imported faceclust module (``io._x``).
* No two modules import each other (imports inside functions count too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import faceclust

SRC = Path(faceclust.__file__).parent
PKG = "faceclust"


def _modules() -> dict[str, Path]:
    mods = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = (PKG, *path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _is_package(mod: str) -> bool:
    return MODULES.get(mod, Path()).name == "__init__.py"


def _resolve(mod: str, node: ast.ImportFrom) -> str:
    """Absolute name of ``from <level dots><module> import ...`` written in ``mod``."""
    if node.level == 0:
        return node.module or ""
    base = mod.split(".")
    if not _is_package(mod):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(mod: str) -> tuple[set[str], list[str]]:
    """(faceclust modules ``mod`` imports, private names it takes from other modules)."""
    tree = ast.parse(MODULES[mod].read_text())
    targets: set[str] = set()
    private: list[str] = []
    module_aliases: set[str] = set()  # local names bound to faceclust modules
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PKG:
                    targets.add(alias.name)
                    module_aliases.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            src = _resolve(mod, node)
            if src.split(".")[0] != PKG:
                continue
            for alias in node.names:
                sub = f"{src}.{alias.name}"
                if sub in MODULES:  # a submodule
                    targets.add(sub)
                    module_aliases.add(alias.asname or alias.name)
                    continue
                targets.add(src)
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    private.append(f"{mod}: from {src} import {alias.name} (line {node.lineno})")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and f"{node.value.id}.{node.attr}" not in MODULES):
            private.append(f"{mod}: {node.value.id}.{node.attr} (line {node.lineno})")
    targets.discard(mod)
    return targets, private


GRAPH = {mod: _imports(mod) for mod in MODULES}


def test_layout_sees_every_module():
    assert {"faceclust.io", "faceclust.io.knn", "faceclust.knn", "faceclust.stages.components",
            "faceclust.methods._auto"} <= set(MODULES)
    # the resolver follows relative imports: io.knn reads KnnGraph from faceclust.knn
    assert "faceclust.knn" in GRAPH["faceclust.io.knn"][0]
    assert "faceclust.stages.components" in GRAPH["faceclust.methods._auto"][0]


def test_no_module_imports_a_private_name_from_another():
    found = [line for _, private in GRAPH.values() for line in private]
    assert found == []


def test_no_two_modules_import_each_other():
    mutual = sorted(
        f"{a} <-> {b}" for a, (targets, _) in GRAPH.items() for b in targets
        if a < b and a in GRAPH.get(b, (set(),))[0]
    )
    assert mutual == []
