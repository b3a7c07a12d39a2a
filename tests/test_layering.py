"""Data flows one way: no module under tinyflow/ imports from a stage that consumes it.

The stages in the order of the pipeline (DESIGN.md's package layout). ``viz`` (drawing: colour wheel,
event images, Rerun entities) stands before ``callbacks``, its consumer; ``app`` (entry points, runs,
trackers, console) is last.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tinyflow"
STAGES = (
    "events",
    "io",
    "synth",
    "data",
    "models",
    "quant",
    "cmax",
    "metrics",
    "tasks",
    "export",
    "deploy",
    "viz",
    "callbacks",
    "app",
)


def imported_stages(path: Path) -> set[str]:
    """The tinyflow stages a module imports from (``import tinyflow.x`` and ``from tinyflow.x import``)."""
    stages = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        stages.update(n.split(".")[1] for n in names if n.startswith("tinyflow.") and n.count(".") >= 1)
    return stages


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


def test_every_package_is_a_known_stage() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(STAGES), (
        f"unknown stages {packages - set(STAGES)}, missing {set(STAGES) - packages}"
    )
    assert not [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"], "modules outside a stage"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_from_earlier_stages(path: Path) -> None:
    stage = path.relative_to(PACKAGE).parts[0]
    later = {s for s in imported_stages(path) if STAGES.index(s) > STAGES.index(stage)}
    assert not later, f"{path.relative_to(PACKAGE)} ({stage}) imports from later stages {sorted(later)}"


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from tinyflow.tasks import FlowTask\nimport tinyflow.app.train\n")
    assert imported_stages(module) == {"tasks", "app"}
