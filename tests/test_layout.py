"""The package layout says what the code is: the run machinery and data/ import no task, nothing
imports in a cycle, and the package root holds the entry point and folders only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "vitbench"
TASKS = ("classification", "denoising", "pretraining")
SHARED = ("run", "data")
# Task-side packages beyond the tasks: what the run machinery and data/ never import.
TASK_SIDE = (*TASKS, "evaluation", "train", "compare", "bench")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The vitbench modules `path` imports, at module level or inside a function."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                ).strip(".")
            # `from vitbench.run import checks` imports the module vitbench.run.checks
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found.update(n for n in names if n in known and n != here)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) for name, path in known.items()}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_real_imports():
    graph = import_graph()
    assert "vitbench.run.task" in graph["vitbench.classification.base"]
    assert "vitbench.classification.teacher" in graph["vitbench.denoising.fid"]  # a lazy import counts
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


@pytest.mark.parametrize("shared", SHARED)
def test_the_run_machinery_and_data_import_no_task(shared):
    wrong = {
        (module, target)
        for module, targets in import_graph().items()
        if room(module) == shared
        for target in targets
        if room(target) in TASK_SIDE
    }
    assert not wrong, f"{shared}/ must not import a task: {sorted(wrong)}"


def test_evaluation_uses_the_classifier_data_and_the_run_machinery_only():
    wrong = {
        (module, target)
        for module, targets in import_graph().items()
        if room(module) == "evaluation"
        for target in targets
        if room(target) not in ("evaluation", "classification", *SHARED)
    }
    assert not wrong, sorted(wrong)


def test_data_and_run_do_not_import_each_other():
    graph = import_graph()
    wrong = {(m, t) for m, ts in graph.items() for t in ts if {room(m), room(t)} == {"run", "data"}}
    assert not wrong, sorted(wrong)


def test_the_package_root_holds_the_entry_point_and_folders_only():
    files = sorted(p.name for p in PACKAGE.iterdir() if p.is_file() and p.suffix == ".py")
    assert files == ["__init__.py", "train.py"]
    for folder in (*SHARED, *TASKS, "evaluation", "compare", "bench"):
        opening = ast.get_docstring(ast.parse((PACKAGE / folder / "__init__.py").read_text()))
        assert opening and len(opening) > 80, f"{folder}/__init__.py opens without saying what the folder is"
