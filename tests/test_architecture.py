"""The house's shape: a package per stage, imports in one direction, and a README map that matches the tree.

Read from the source with ``ast`` (nothing is imported), so a circle hidden behind ``TYPE_CHECKING`` or
inside a function counts too.
"""
from __future__ import annotations

import ast

from .support.house import PACKAGE, ROOT, import_graph, imported_names, module_name, modules

STAGES = ("speech", "prompt", "picture", "jobs", "web")
MAX_TOP_LEVEL = 12


def test_top_level_keeps_only_what_every_stage_shares():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, top
    for stage in STAGES:
        assert (PACKAGE / stage / "__init__.py").is_file(), stage


def test_every_module_that_hears_or_speaks_lives_in_the_speech_package():
    """Only the speech package imports a recogniser or a voice."""
    speech_libraries = ("faster_whisper", "ctranslate2", "piper", "TTS", "wyoming")
    for path in modules():
        importer = module_name(path)
        if importer.startswith("speech2image.speech"):
            continue
        for target, _ in imported_names(path):
            assert target.split(".")[0] not in speech_libraries, f"{importer} imports {target}"


def test_no_import_circles():
    graph = import_graph()
    seen, on_path, path = set(), set(), []

    def visit(node):
        seen.add(node)
        on_path.add(node)
        path.append(node)
        for target in sorted(graph.get(node, ())):
            assert target not in on_path, "import circle: " + " -> ".join(path[path.index(target):] + [target])
            if target not in seen:
                visit(target)
        on_path.discard(node)
        path.pop()

    for node in sorted(graph):
        if node not in seen:
            visit(node)


def test_no_module_outside_a_package_imports_its_private_names():
    for path in modules():
        importer = module_name(path)
        for target, names in imported_names(path):
            package = target.rsplit(".", 1)[0] if target.count(".") > 1 else target
            if importer.startswith(package + ".") or importer == package:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            assert not private, f"{importer} imports {private} from {target}"


def test_other_stages_use_a_stage_through_its_package():
    """Outside a stage's package, the app imports what its __init__ names, never its modules."""
    for path in modules():
        importer = module_name(path)
        for target, names in imported_names(path):
            parts = target.split(".")
            package = ".".join(parts[:2])
            if len(parts) < 3 or parts[1] not in STAGES or importer == package or importer.startswith(package + "."):
                continue
            assert False, f"{importer} imports {names} from {target}; use speech2image.{parts[1]}"


def test_each_package_says_what_it_owns_and_names_its_interface():
    for init in PACKAGE.rglob("__init__.py"):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{init} has no docstring saying what it owns"
        if init.parent.name in STAGES:
            assert any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in n.targets)
                       for n in tree.body), f"{init} does not name its interface (__all__)"


def test_the_layout_map_matches_the_tree():
    """docs/development.md's layout map (linked from the README) lists every module of the package, and
    nothing that is not there."""
    assert "docs/development.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    text = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    mapped, folders = set(), []
    for line in block.splitlines():
        if not line.strip():
            continue
        depth, name = (len(line) - len(line.lstrip())) // 2, line.split()[0]
        folders = folders[:depth]
        if name.endswith("/"):  # a package: its __init__.py, which names its interface, goes with it
            folders.append(name.rstrip("/"))
            mapped.add("/".join(folders + ["__init__.py"]))
        elif name.endswith(".py"):
            mapped.add("/".join(folders + [name]))
    actual = {p.relative_to(ROOT).as_posix() for p in modules()}
    assert sorted(actual - mapped) == [], "modules missing from the map"
    assert sorted(mapped - actual) == [], "the map names modules that do not exist"
