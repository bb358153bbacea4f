"""The package's structure: layers and cycles (import-linter contracts in pyproject.toml), no
fallbacks around the project's own modules, no global matplotlib backend switch in library code.

See docs/architecture.md for the layer diagram.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
PACKAGE = ROOT / "navigator"


def _contracts() -> list[dict]:
    return tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]


def _modules(root: Path):
    for path in sorted(root.rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def test_import_contracts_hold(capsys):
    """Every import-linter contract is kept (layers, acyclic packages, Qt only in the GUI, plugins)."""
    from importlinter.application.use_cases import lint_imports
    from importlinter.configuration import configure

    configure()
    ok = lint_imports(config_filename=str(PYPROJECT), cache_dir=None, no_logo=True)
    report = capsys.readouterr().out
    assert ok, report
    for contract in _contracts():
        assert f"{contract['name']} KEPT" in report, report


def test_contracts_list_no_exceptions_and_cover_the_package():
    """No contract ignores an import; the layers contract names every top-level module."""
    contracts = {c["id"]: c for c in _contracts()}
    assert {"layers", "acyclic", "qt-in-gui-only", "plugins", "no-plugin-imports"} <= set(contracts)
    for contract in contracts.values():
        assert not contract.get("ignore_imports"), f"contract {contract['id']} lists exceptions"
    layers = contracts["layers"]
    assert layers["exhaustive"] is True
    named = {m.strip() for layer in layers["layers"] for m in layer.split("|")}
    top = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    top |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert top == named


def _imports_navigator(nodes) -> bool:
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.ImportFrom) and (sub.level or (sub.module or "").startswith("navigator")):
                return True
            if isinstance(sub, ast.Import) and any(a.name.startswith("navigator") for a in sub.names):
                return True
    return False


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names)


def test_no_import_fallbacks_around_own_modules():
    """A missing or broken navigator module is a bug to see, not a feature to hide."""
    found = []
    for path, tree in _modules(PACKAGE):
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
                if _imports_navigator(node.body):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found


def test_library_code_does_not_switch_the_matplotlib_backend():
    """Figures are drawn on matplotlib.figure.Figure; the backend is the application's choice."""
    found = []
    for path, tree in _modules(PACKAGE):
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "use"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "matplotlib"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.ImportFrom) and node.module == "matplotlib" and any(
                    a.name == "pyplot" for a in node.names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Import) and any(a.name == "matplotlib.pyplot" for a in node.names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} (pyplot)")
    assert not found, found
