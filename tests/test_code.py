"""The code's own checks, run with the suite: strict typing and lint (settings in pyproject)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("tool", [["mypy"], ["ruff", "check", "."]], ids=["mypy", "ruff"])
def test_code_passes(tool: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", *tool], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def _imports(path: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("layer,forbidden", [
    ("callbacks/core", ("callbacks.stores", "callbacks.model_route_callback", "app", "textual",
                        "litellm", "redis")),
    ("callbacks/stores", ("callbacks.model_route_callback", "app", "textual")),
])
def test_layers_import_one_way(layer: str, forbidden: tuple[str, ...]) -> None:
    """core <- stores <- faces: a lower layer never imports a higher one (design.md)."""
    bad = [f"{path.relative_to(ROOT)} imports {name}"
           for path in sorted((ROOT / layer).glob("*.py")) for name in _imports(path)
           if any(name == f or name.startswith(f + ".") for f in forbidden)]
    assert not bad, bad
