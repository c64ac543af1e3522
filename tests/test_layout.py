"""The apps import one way: operations → scraping → trading → learning, dashboard over all; an upward import fails.

Every import statement in every source file of an app is read with `ast`, including those made
lazily inside functions, and its top-level package compared with the importer's. tradelearn (the
project's plumbing) and third-party packages may be imported by anyone. Relative imports cannot
leave their own app, so they are never upward. A project package outside the layers (tests,
benchmarks, a stray top-level package) is importable by none of them. Names looked up by string
(Celery task names, `apps.get_model`) are not imports and are not checked here.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Lowest first: an app may import those before it, never those after it.
LAYERS = ("learning", "trading", "scraping", "operations", "dashboard")


def imported_packages(source: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in `source`, at any depth."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def upward_imports(root: Path) -> list[str]:
    """Every import under `root` from an app to one above it, or to a project package outside the layers
    (tests, scripts, a stray top-level package), as `path:line app -> package`."""
    rank = {app: position for position, app in enumerate(LAYERS)}
    outside = {path.name for path in root.iterdir() if (path / "__init__.py").is_file()} - {*LAYERS, "tradelearn"}
    problems = []
    for app in LAYERS:
        for path in sorted((root / app).rglob("*.py")):
            for line, package in imported_packages(path.read_text()):
                if rank.get(package, -1) > rank[app] or package in outside:
                    problems.append(f"{path.relative_to(root)}:{line} {app} -> {package}")
    return problems


def test_no_app_imports_one_above_it():
    assert all((ROOT / app).is_dir() for app in LAYERS)
    assert upward_imports(ROOT) == []


def test_the_check_finds_an_upward_import_at_module_level_and_inside_a_function(tmp_path):
    for app in LAYERS:
        (tmp_path / app).mkdir()
    (tmp_path / "learning" / "ok.py").write_text("import numpy\nfrom tradelearn.bulk import bulk_insert\nfrom . import models\n")
    (tmp_path / "trading" / "ticks.py").write_text(
        '"""A module."""\nfrom learning.models import TrainingRecord\n\n\ndef engine_for():\n    from scraping.engine import ProfitScrapingEngine\n'
    )
    (tmp_path / "learning" / "services.py").write_text("import operations.replay\n")
    (tmp_path / "operations" / "report.py").write_text("from dashboard import views\nfrom scraping.engine import ENGINES\n")
    (tmp_path / "evaluation").mkdir()  # a project package that is not an app in the layers
    (tmp_path / "evaluation" / "__init__.py").write_text("")
    (tmp_path / "trading" / "evaluate.py").write_text("from evaluation.report import write_report\n")
    assert upward_imports(tmp_path) == [
        "learning/services.py:1 learning -> operations",
        "trading/evaluate.py:1 trading -> evaluation",
        "trading/ticks.py:6 trading -> scraping",
        "operations/report.py:1 operations -> dashboard",
    ]
