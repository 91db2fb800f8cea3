"""The shape of the house (DESIGN.md, "Architecture"): what imports what, where SQL lives, strict typing."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ledger", "projections")
# What ``projections`` may use of ``ledger``: the pure core, never the facade, engine or storage.
PURE_CORE = {
    "ledger",
    "ledger.blocks",
    "ledger.errors",
    "ledger.events",
    "ledger.lineage",
    "ledger.merkle",
    "ledger.session",
    "ledger.times",
    "ledger.tokens",
    "ledger.validation",
}
# The faces: they use the names ``ledger`` exports, the presentation helpers (output, settings, extras: the
# one-line error for a missing optional package, scratch: outputs written under a temporary name) and the
# pure core's vocabulary and argument checks (events, ids, times, validation), never the facade's insides.
FACES = ("ledger.aio", "ledger.cli", "ledger.cli_proofs", "ledger.arguments", "ledger.demo", "ledger.mcp_server", "ledger.mcp_tools",
         "ledger.integrations.openai_agents", "ledger.integrations.workflow", "ledger.integrations.langgraph",
         "ledger.integrations.langgraph_records", "ledger.integrations.langgraph_values", "ledger.integrations.otel",
         "ledger.integrations.adk", "ledger.integrations.adk_events")
FACE_MAY_IMPORT = {"ledger", "ledger.output", "ledger.settings", "ledger.extras", "ledger.scratch", "ledger.events",
                   "ledger.blocks", "ledger.tokens",
                   "ledger.ids", "ledger.times", "ledger.validation", "ledger.integrations", *FACES}


def _modules() -> dict[str, Path]:
    found = {}
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id.lstrip("_") == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports (at any depth, except under ``if TYPE_CHECKING``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in out if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_there_is_no_import_cycle_among_the_projects_modules() -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                walk(target)
        path.pop()
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            walk(name)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n != "ledger.__main__"))
def test_every_module_imports_on_its_own_in_a_fresh_interpreter(name: str) -> None:
    run = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_projections_use_only_the_pure_core_of_ledger() -> None:
    for name, targets in GRAPH.items():
        if name.startswith("projections"):
            used = {t for t in targets if t.startswith("ledger")}
            assert used <= PURE_CORE, f"{name} imports {sorted(used - PURE_CORE)}"


def test_importing_the_pure_core_does_not_load_the_facade() -> None:
    code = "import sys, projections, ledger.events; print(sorted(m for m in sys.modules if m.startswith('ledger')))"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(eval(run.stdout))
    assert not loaded & {"ledger.ledger", "ledger.engine", "ledger.storage", "ledger.commands"}, loaded


def test_the_faces_use_only_what_ledger_exports_plus_presentation_helpers() -> None:
    for face in FACES:
        used = {t for t in GRAPH[face] if t.startswith("ledger")}
        assert used <= FACE_MAY_IMPORT, f"{face} imports {sorted(used - FACE_MAY_IMPORT)}"


_SQL_CALL = re.compile(r"\.(execute|executemany|executescript)\(")


def test_sql_lives_only_in_the_storage_backends_and_the_projectors() -> None:
    offenders = [
        name for name, path in MODULES.items()
        if name.startswith("ledger") and not name.startswith("ledger.storage") and _SQL_CALL.search(path.read_text())
    ]
    assert offenders == []


def test_modules_stay_small_enough_to_read() -> None:
    # DESIGN.md: roughly 150-600 lines a module.
    too_long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 650}
    assert too_long == {}


def test_the_package_type_checks_under_mypy_strict() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *PACKAGES],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_type_ignore_names_its_code_and_says_why() -> None:
    bare = []
    for name, path in MODULES.items():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "type: ignore" in line and not re.search(r"type: ignore\[[a-z-, ]+\]\s+#\s*\S", line):
                bare.append(f"{name}:{number}")
    assert bare == []
