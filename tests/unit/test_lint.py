"""The code base stays ruff clean (configuration in pyproject.toml), and its layers point one way.

Layers, read from the imports in the source (the AST, every import including the lazy ones inside
functions), never by importing anything:
core <- lab <- training <- plots, commands, api, cli, pages, gradio_app. Nothing in lmdemo imports
streamlit or gradio; plots import no torch.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

RANK = {"core": 0, "lab": 1, "training": 2}  # everything else in lmdemo is the top layer (3)


def test_ruff_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT,
                          capture_output=True, text=True)
    assert "No module named ruff" not in proc.stderr, "pip install -r requirements-dev.txt"
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def imports(path: Path) -> list[str]:
    """Every module a file imports, anywhere in it (absolute names)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
            if node.module == "lmdemo":  # `from lmdemo import core` names a submodule
                out += [f"lmdemo.{a.name}" for a in node.names]
    return out


def layer_of(module: str) -> int:
    parts = module.split(".")
    return RANK.get(parts[1], 3) if len(parts) > 1 and parts[0] == "lmdemo" else 3


def package_files() -> list[Path]:
    return [p for p in (ROOT / "lmdemo").rglob("*.py") if "assets" not in p.relative_to(
        ROOT / "lmdemo").parts]


def test_the_package_is_layered():
    wrong = []
    for path in package_files():
        rel = path.relative_to(ROOT).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        mine = layer_of(module)
        for imp in imports(path):
            top = imp.split(".")[0]
            if top in ("streamlit", "gradio"):
                wrong.append(f"{rel}: imports {imp} (the UI)")
            elif top == "torch" and rel.parts[1] == "plots":
                wrong.append(f"{rel}: plots import torch")
            elif top == "lmdemo" and imp != "lmdemo" and layer_of(imp) > mine:
                wrong.append(f"{rel}: imports {imp}, a higher layer")
    assert not wrong, "\n".join(wrong)


def test_the_layer_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from lmdemo.training import jobs\n    import streamlit\n")
    assert "lmdemo.training" in imports(bad) and "streamlit" in imports(bad)
    assert layer_of("lmdemo.training.jobs") > layer_of("lmdemo.lab.next_token")


@pytest.mark.parametrize("layer", ["core", "lab", "training"])
def test_each_layer_has_a_docstring_and_every_module_too(layer):
    for path in (ROOT / "lmdemo" / layer).glob("*.py"):
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path.name} has no docstring"
