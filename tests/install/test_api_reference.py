"""docs/api is kept by hand: fail when a public name of the headers or of the Python packages
(or an option of a CenterLoss constructor) is missing from it. No build needed."""
from __future__ import annotations

import ast
import re

import pytest

from install_helpers import REPO

CPP_DOC = (REPO / "docs" / "api" / "cpp.md").read_text()
PY_DOC = (REPO / "docs" / "api" / "python.md").read_text()
HEADERS = REPO / "include" / "centerloss"


def header_names() -> list[str]:
    names = []
    for header in sorted(HEADERS.glob("*.h")):
        text = re.sub(r"//[^\n]*", "", header.read_text())  # code only, not comments
        names += re.findall(r"enum class (\w+)", text)
        for body in re.findall(r"enum class \w+[^{]*\{([^}]*)\}", text):
            names += re.findall(r"^\s*(\w+)", body, re.M)
        names += re.findall(r"TORCH_ARG\([^,]+,\s*(\w+)\)", text)
        names += re.findall(r"^\s*struct (\w+)", text, re.M)
        names += re.findall(r"^\s*class (\w+)", text, re.M)
        # free functions and public methods: "<type> name(" at the start of a declaration
        names += re.findall(r"^\s*(?:explicit\s+)?(?:const\s+)?[A-Za-z_][\w:<>&*]*\s+[&*]?(\w+)\(", text, re.M)
    return sorted(set(names))


def public_methods_of_impl() -> set[str]:
    text = (HEADERS / "center_loss.h").read_text()
    private = text.split(" private:")[1] if " private:" in text else ""
    return set(re.findall(r"(\w+)\(", private))


@pytest.mark.parametrize("name", header_names())
def test_cpp_reference_names_every_public_declaration(name):
    if name in public_methods_of_impl() - {"CenterLossImpl"}:
        pytest.skip(f"{name} is private")
    assert re.search(rf"\b{name}\b", CPP_DOC), f"docs/api/cpp.md does not mention {name}"


def module_all(path) -> list[str]:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            return [ast.literal_eval(e) for e in node.value.elts]
    raise AssertionError(f"{path} has no __all__")


def constructor_args(path, cls="CenterLoss") -> list[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            init = next(f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
            return [a.arg for a in init.args.args[1:]]
    raise AssertionError(f"no class {cls} in {path}")


PACKAGE = REPO / "python" / "centerloss"
PY_NAMES = [f"centerloss.{n}" for n in module_all(PACKAGE / "__init__.py")]
if (PACKAGE / "keras" / "__init__.py").exists():
    PY_NAMES += [f"centerloss.keras.{n}" for n in module_all(PACKAGE / "keras" / "__init__.py")]


@pytest.mark.parametrize("name", PY_NAMES)
def test_python_reference_documents_every_exported_name(name):
    assert re.search(rf"### `(class )?{re.escape(name)}\b", PY_DOC), f"docs/api/python.md has no section for {name}"


@pytest.mark.parametrize("path", [PACKAGE / "nn.py", PACKAGE / "keras" / "layer.py"],
                         ids=["torch", "keras"])
def test_python_reference_lists_every_constructor_option(path):
    if not path.exists():
        pytest.skip(f"{path} is not in this tree")
    heading = "centerloss.keras.CenterLoss(" if path.parent.name == "keras" else "centerloss.CenterLoss("
    line = next(l for l in PY_DOC.splitlines() if heading in l)
    missing = [a for a in constructor_args(path) if not re.search(rf"\b{a}\b", line)]
    assert not missing, f"docs/api/python.md's {heading}...) lacks {missing}"
