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


# The plumbing below every app (the bottom layer of the contract in pyproject.toml).
PLUMBING = ("config.runtime", "config.dramatiq", "config.metrics_recording", "config.logging",
            "config.client_address")


def _app_of(module: str) -> str:
    """The app a module belongs to; the plumbing counts as one of its own."""
    if any(module == name or module.startswith(f"{name}.") for name in PLUMBING):
        return "plumbing"
    return module.split(".")[0]


def test_no_cycle_between_apps():
    import graphlib

    import grimp

    graph = grimp.build_graph(*APPS, cache_dir=None)
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        app = _app_of(module)
        if app == "config" or ".management.commands." in module:
            continue  # entry points (settings, URLs, the WSGI app, commands) sit on top of everything
        for imported in graph.find_modules_directly_imported_by(module):
            other = _app_of(imported)
            if other != app:
                edges.setdefault(app, set()).add(other)

    try:
        order = list(graphlib.TopologicalSorter(edges).static_order())
    except graphlib.CycleError as error:
        raise AssertionError(f"apps import each other in a cycle: {error.args[1]}") from None
    assert order[0] == "plumbing" and "config" not in order


def test_the_plumbing_is_the_bottom_layer_of_the_contract():
    import tomllib

    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]

    assert [name.strip() for name in contract["layers"][-1].split(":")] == list(PLUMBING)
    assert not contract.get("ignore_imports")  # no known exception: every upward import is a hook
