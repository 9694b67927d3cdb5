"""Data flows one way (DESIGN.md): a package imports only packages to its left; entry points may wire."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAIN = ("data_prep", "sharding", "trainer", "downstream")
ENTRY_POINTS = {"__main__.py", "train.py", "evaluate.py"}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every absolute import in a module, wherever it sits (lazy imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def modules(package: str) -> list[Path]:
    """Every module of a package except its entry points."""
    return sorted(p for p in (ROOT / package).rglob("*.py") if p.name not in ENTRY_POINTS)


@pytest.mark.parametrize("position", range(len(CHAIN)), ids=CHAIN)
def test_no_package_imports_one_to_its_right(position: int) -> None:
    package, right = CHAIN[position], set(CHAIN[position + 1 :])
    found = modules(package)
    assert found, f"{package}/ holds no modules; is CHAIN out of date?"
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & right)
        for path in found
        if imported_packages(path) & right
    }
    assert not wrong, f"imports against the data flow (move the code right, or wire it in an entry point): {wrong}"


def test_the_checker_sees_lazy_and_dotted_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import trainer.loop\n\ndef f():\n    from sharding.build import x\n    from . import y\n")
    assert imported_packages(module) == {"trainer", "sharding"}
