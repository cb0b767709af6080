"""The flat public API: ``from recai import ...`` gives the same objects as their deep paths, lazily."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import recai

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = {"torch", "transformers", "peft", "fastapi", "uvicorn", "sentence_transformers", "faiss"}
# public name -> the module that defines it, from recai's lazy-export table
DEFINED_IN = {name: f"recai{module}" for module, names in recai._EXPORTS.items() for name in names}


def _packages() -> list[str]:
    names = ["recai"]
    for info in pkgutil.walk_packages(recai.__path__, "recai."):
        if info.ispkg:
            names.append(info.name)
    return names


def _resolve(module: object, name: str) -> object:
    try:
        return getattr(module, name)
    except ModuleNotFoundError as err:  # a name whose extra is not installed
        if err.name and err.name.split(".")[0] in OPTIONAL:
            pytest.skip(f"{name} needs {err.name}")
        raise


@pytest.mark.parametrize("name", sorted(set(recai.__all__) - {"__version__"}))
def test_every_public_name_is_the_object_at_its_deep_path(name: str) -> None:
    value = _resolve(recai, name)
    deep = importlib.import_module(DEFINED_IN[name])
    assert value is getattr(deep, name)


def test_the_lazy_table_all_and_dir_agree() -> None:
    assert set(recai.__all__) == set(DEFINED_IN) | {"__version__"}
    assert len(DEFINED_IN) == sum(len(names) for names in recai._EXPORTS.values())
    assert len(recai.__all__) == len(set(recai.__all__))
    assert set(recai.__all__) <= set(dir(recai))


def test_the_type_checking_block_mirrors_the_lazy_table() -> None:
    source = (ROOT / "src/recai/__init__.py").read_text()
    block = source.split("if TYPE_CHECKING:", 1)[1]
    imported: dict[str, str] = {}
    for module, names in re.findall(
        r"from (recai[\w.]*) import \(?([^)]*?)\)?\n(?=    from|\Z)", block, re.S
    ):
        for name in re.split(r"[\s,]+", names.strip()):
            if name:
                imported[name] = module
    assert imported == DEFINED_IN


def test_an_unknown_name_raises_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match=r"no attribute 'no_such_thing'.*recai\.__all__"):
        _ = recai.no_such_thing
    assert not hasattr(recai, "no_such_thing")


def _fresh_interpreter(code: str) -> str:
    """What ``code`` prints in a new Python process (imports already made here would hide a cost)."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def _loaded(modules: tuple[str, ...]) -> str:
    return f"[m for m in {modules!r} if m in sys.modules]"


def test_import_recai_imports_no_heavy_library() -> None:
    heavy = _loaded(("torch", "transformers", "duckdb", "pandas", "numpy"))
    mine = "sorted(m for m in sys.modules if m.startswith('recai'))"
    assert _fresh_interpreter(f"import sys, recai\nprint({heavy}, {mine})") == "[] ['recai', 'recai._lazy']"


def test_the_packages_every_command_reaches_import_no_heavy_library() -> None:
    """``recai --help`` imports every command module; the packages they reach resolve names lazily."""
    code = (
        "import sys\n"
        "import recai.agent.learning, recai.data, recai.embed, recai.explain, recai.gen, recai.llm, recai.train\n"
        "from recai.data import DataError, portable_spec\n"
        "from recai.rec import MODELS\n"
        "assert list(MODELS) == ['popularity', 'itemcf', 'als', 'bpr', 'sasrec']\n"
        f"print({_loaded(('torch', 'duckdb', 'pandas', 'numpy', 'scipy'))})\n"
    )
    assert _fresh_interpreter(code) == "[]"


def test_the_cli_imports_no_heavy_library() -> None:
    """``recai --help`` builds every command and its defaults; the data, model and training libraries
    wait for a command that runs (it took ~7 s when they did not)."""
    heavy = _loaded(("torch", "transformers", "duckdb", "pandas", "scipy", "fastapi"))
    assert _fresh_interpreter(f"import sys, recai.cli\nprint({heavy})") == "[]"


@pytest.mark.parametrize("package", _packages())
def test_every_package_declares_all_and_its_names_exist(package: str) -> None:
    module = importlib.import_module(package)
    names = getattr(module, "__all__", None)
    assert names, f"{package} has no __all__"
    assert len(names) == len(set(names))
    for name in names:
        if name != "__version__":
            _resolve(module, name)
        assert name in dir(module)


def _readme_python() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python", 1)[1]
    return section.split("```python\n", 1)[1].split("\n```", 1)[0]


def test_the_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(_readme_python(), "README.md", "exec"), {"__name__": "readme"})


def _error_classes() -> list[tuple[str, str]]:
    """(module, class) for every ``class ...Error(...)`` under src/recai, found without importing."""
    found = []
    for path in sorted((ROOT / "src/recai").rglob("*.py")):
        parts = path.relative_to(ROOT / "src").with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found += [(module, name) for name in re.findall(r"^class (\w+Error)\(", path.read_text(), re.M)]
    return found


@pytest.mark.parametrize(("module", "name"), _error_classes())
def test_every_library_exception_is_a_recai_error(module: str, name: str) -> None:
    try:
        cls = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] in OPTIONAL | {"redis"}:
            pytest.skip(f"{module} needs {err.name}")
        raise
    assert issubclass(cls, recai.RecaiError)
