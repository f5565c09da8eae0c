"""The package's modules and their imports, read with ``ast`` (nothing is imported)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "speech2image"


def modules() -> list[Path]:
    """Every Python module of the package (the installed copy's site/ excluded)."""
    return sorted(p for p in PACKAGE.rglob("*.py") if "site" not in p.relative_to(PACKAGE).parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _package(path: Path) -> str:
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


def imported_names(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported from, names) for every import of the file, wherever it stands (functions and
    TYPE_CHECKING blocks too); ``from . import x`` of a submodule names that submodule."""
    known = {module_name(p) for p in modules()}
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package(path).split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [alias.name for alias in node.names]
            submodules = [n for n in names if f"{target}.{n}" in known]
            for name in submodules:
                found.append((f"{target}.{name}", []))
            rest = [n for n in names if n not in submodules]
            if rest or not submodules:
                found.append((target, rest))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports explicitly."""
    known = {module_name(p) for p in modules()}
    graph: dict[str, set[str]] = {}
    for path in modules():
        importer = module_name(path)
        targets = {target for target, _ in imported_names(path) if target in known and target != importer}
        graph[importer] = targets
    return graph
