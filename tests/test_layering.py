"""The import layering, in one place. Lowest first:

    core                      errors, config, registries, files, runtime: no project imports
    data, features, models    siblings: each imports core only, never one another
    submissions               the file format and the Kaggle API: core and the layer above
    tasks                     the competitions and the spec they fill in (Task, ImageTask, TASKS)
    pipelines                 the stages that join them, runs on disk
    commands                  the CLI's commands: parse, build a config, call a pipeline
    cli                       the entry: runs the commands, bad input to one line and exit code 2

A module imports its own package and any lower layer, never a higher one or a sibling. The
Kaggle download is therefore the caller's (tasks/task.py's fetch_if_missing, `cli.py download`): data/ only
locates files. submissions/ sits above data/ and models/ as the competition's outside edge
(what Kaggle accepts, and the API that fetches and uploads), and below tasks/ and pipelines/,
which use it; it needs nothing of runs or tasks beyond what it is handed. tasks/ sits below
pipelines/: a task's methods (read its data, encode a fold, predict its views) use only the layers
under it, and the stages call them, so the stage code has no table/image branch. Imports inside functions count
as much as those at the top (a late import is still a dependency), and nothing under
TYPE_CHECKING is exempt: a type a lower layer needs is declared there (data.ingest.TableSpec).
Also checked: no name with a leading underscore is imported from another module, and project
modules import one another without a cycle. Files are read with `ast`; nothing is imported.
"""
from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT

LAYERS = [("core",), ("data", "features", "models"), ("submissions",), ("tasks",), ("pipelines",), ("commands",), ("cli",)]
LAYER = {package: i for i, packages in enumerate(LAYERS) for package in packages}


def _module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _project_modules() -> dict[str, object]:
    files = [ROOT / "cli.py"] + [p for package in LAYER if package != "cli" for p in (ROOT / package).rglob("*.py")]
    return {_module_name(p): p for p in sorted(files)}


MODULES = _project_modules()


def _imports(module: str, path) -> list[tuple[str, int, list[str]]]:
    """(imported project module, line, names taken from it) for every import in the file, at any depth."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:          # relative: from . import x / from ..core import y
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub, node.lineno, []) if sub in MODULES else (base, node.lineno, [alias.name]))
    return [(name, line, names) for name, line, names in found if name.split(".")[0] in LAYER]


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def test_the_layers_name_every_package():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench", "tools"}
    assert packages == set(LAYER) - {"cli"}, "add the new package to LAYERS, at its place in the order"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_or_sideways_import(module):
    own = module.split(".")[0]
    bad = [f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}"
           for target, line, _ in GRAPH[module]
           if target.split(".")[0] != own and LAYER[target.split(".")[0]] >= LAYER[own]]
    assert not bad, "; ".join(bad) + f" (the layers, lowest first: {LAYERS})"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_is_imported_from_another_module(module):
    bad = [f"{MODULES[module].relative_to(ROOT)}:{line} imports {name} from {target}"
           for target, line, names in GRAPH[module] for name in names
           if target != module and name.startswith("_") and not name.startswith("__")]
    assert not bad, "; ".join(bad) + " (drop the underscore, or move the helper where both can use it)"


def test_no_import_cycle():
    edges = {m: sorted({t for t, _, _ in GRAPH[m] if t in MODULES and t != m}) for m in MODULES}
    state: dict[str, int] = {}          # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for t in edges[m]:
            if state.get(t) == 1:
                return path[path.index(t):] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        state[m] = 2
        path.pop()
        return None

    for m in sorted(MODULES):
        if m not in state and (cycle := visit(m)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_the_checker_sees_function_level_and_type_checking_imports(tmp_path):
    """The walk is ast.walk over the whole file, so an import in a function body or under
    `if TYPE_CHECKING:` is found like one at the top."""
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tasks.task import Task\n" \
             "def f():\n    from submissions import kaggle\n"
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    found = [(t, line) for t, line, _ in _imports("data.probe", probe)]
    assert found == [("tasks.task", 3), ("submissions.kaggle", 5)]
