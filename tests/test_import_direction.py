"""Data flows one way (docs/architecture.md): a package imports only packages to its left; entry points may wire.

Helpers are imported from the module that defines them (a package's `__init__` may gather its public names):
shared ones live at the left end of the chain, in `data_prep.atomic`, `data_prep.pcm` and `data_prep.subcommands`,
where every stage may import them, so no module re-exports another's helpers.
"""

import ast
from pathlib import Path

import pytest

from tests.support.paths import REPO as ROOT

CHAIN = ("data_prep", "sharding", "trainer", "downstream")
ENTRY_POINTS = {"__main__.py", "train.py", "evaluate.py"}
INSTALLED = "musicssl."
"""The packages are installed as musicssl.<package> (pyproject.toml); `import trainer` would find another project's
package once installed, or load this one a second time under another name from a checkout."""


def absolute_imports(path: Path) -> list[str]:
    """The module named by every absolute import in a module, wherever it sits (lazy imports included)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def project_path(module: str) -> str:
    """A module's name without the installed prefix: musicssl.trainer.loop -> trainer.loop."""
    return module.removeprefix(INSTALLED)


def imported_modules(path: Path) -> set[str]:
    """Every module a module imports absolutely, without the installed prefix (trainer.loop)."""
    return {project_path(name) for name in absolute_imports(path)}


def imported_packages(path: Path) -> set[str]:
    """The package of every absolute import in a module (trainer)."""
    return {name.partition(".")[0] for name in imported_modules(path)}


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


def test_the_read_side_is_the_right_end_of_sharding() -> None:
    """`sharding/read/` (pairs for training) builds on the rest of sharding (format, location, shard_set, tracks);
    the rest never imports it, so writing, verifying and evaluating a set do not depend on the training readers."""
    read = ROOT / "sharding" / "read"
    assert sorted(read.glob("*.py")), "sharding/read/ holds no modules; is this test out of date?"
    wrong = {
        str(path.relative_to(ROOT)): sorted(n for n in imported_modules(path) if n.startswith("musicssl.sharding.read"))
        for path in modules("sharding")
        if read not in path.parents and any(n.startswith("musicssl.sharding.read") for n in imported_modules(path))
    }
    assert not wrong, f"only sharding/read/ and entry points may import the read side: {wrong}"


def top_level_names(path: Path) -> set[str]:
    """Names a module defines itself (functions, classes, assignments), not the ones it imports."""
    names = set()
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def borrowed_imports(path: Path) -> list[str]:
    """`module.name` of every import from a project module (not a package) that does not define `name`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
            continue
        module = project_path(node.module)
        source = ROOT.joinpath(*module.split(".")).with_suffix(".py")
        if module.partition(".")[0] in CHAIN and source.is_file():
            defined = top_level_names(source)
            found += [f"{node.module}.{alias.name}" for alias in node.names if alias.name not in defined]
    return found


def project_files() -> list[Path]:
    return [
        *ROOT.glob("*.py"),
        *(p for folder in (*CHAIN, "tests", "benchmarks") for p in (ROOT / folder).rglob("*.py")),
    ]


def test_the_packages_are_imported_by_their_installed_names() -> None:
    bare = {
        str(path.relative_to(ROOT)): names
        for path in project_files()
        if (names := sorted(name for name in absolute_imports(path) if name.partition(".")[0] in CHAIN))
    }
    assert not bare, f"import these as musicssl.<package> (pyproject.toml installs them so): {bare}"


def test_helpers_are_imported_from_the_module_that_defines_them() -> None:
    files = project_files()
    borrowed = {str(path.relative_to(ROOT)): names for path in files if (names := borrowed_imports(path))}
    assert not borrowed, f"import these from the module that defines them: {borrowed}"


def test_the_checker_sees_lazy_and_dotted_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import musicssl.trainer.loop\n\ndef f():\n    from musicssl.sharding.build import x\n    from . import y\n"
    )
    assert imported_packages(module) == {"trainer", "sharding"}


def test_the_checker_sees_a_re_exported_helper(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from musicssl.sharding.format import INDEX_NAME, write_atomic\n")
    assert borrowed_imports(module) == ["musicssl.sharding.format.write_atomic"]
