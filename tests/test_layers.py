"""The apps' boundaries that import-linter cannot see: no module imports another app's
underscore names (the layers themselves are checked by `lint-imports`, see pyproject.toml)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("config", "tenants", "voices", "synthesis", "batches", "analytics")


def _app_modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield app, path


def test_no_module_imports_another_apps_private_names():
    found = []
    for app, path in _app_modules():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.ImportFrom) or not node.module or node.level:
                continue
            other = node.module.split(".")[0]
            if other in APPS and other != app:
                private = [alias.name for alias in node.names if alias.name.startswith("_")]
                private += [part for part in node.module.split(".") if part.startswith("_")]
                if private:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module} {private}")

    assert found == []


def test_the_layers_contract_runs_in_make_test():
    makefile = (ROOT / "Makefile").read_text()

    assert "lint-imports" in makefile and "ruff check" in makefile
    assert "test: $(VENV)/.installed-test browser lint" in makefile
