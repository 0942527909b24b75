"""The code's own checks, run with the suite: strict typing and lint (settings in pyproject)."""

from __future__ import annotations

import ast
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


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_circles() -> list[list[str]]:
    """Cycles in the project's import graph (every import, function-level ones included):
    its strongly connected components of more than one module."""
    modules = {_module(p): p for layer in ("callbacks", "app") for p in (ROOT / layer).rglob("*.py")}
    graph = {name: sorted({m for imported in _imports(path) for m in modules
                           if imported == m or (imported.startswith(m + ".") and m != name)} - {name})
             for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return circles


def test_the_callback_module_is_a_thin_adapter() -> None:
    """LiteLLM's hook API in one short module; routing and bookkeeping live where they can be read
    (and tested) without it, and never import LiteLLM at module level."""
    assert len((ROOT / "callbacks/model_route_callback.py").read_text().splitlines()) < 200
    for module in ("routing", "outcomes", "proxy_targets"):
        tree = ast.parse((ROOT / f"callbacks/{module}.py").read_text())
        top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
        assert not any(m and m.startswith("litellm") for m in top), module


def test_no_import_circles() -> None:
    """A reader can take any module with what it imports, and no more (design.md's layers)."""
    assert import_circles() == []


def test_every_package_says_what_it_is() -> None:
    """A reader finds a part by its folder: each package opens with a docstring."""
    silent = [str(init.relative_to(ROOT)) for layer in ("callbacks", "app")
              for init in (ROOT / layer).rglob("__init__.py")
              if ast.get_docstring(ast.parse(init.read_text())) is None]
    assert silent == []
