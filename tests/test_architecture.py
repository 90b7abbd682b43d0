"""The data flows one way: no module imports one of a later layer (the README's layout, in
its order). Imports inside functions count too: a late import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import reviewstars

PACKAGE = Path(reviewstars.__file__).parent
#: The README's layout, first to last.
LAYERS = [
    {"errors", "artifacts", "progress", "ledger", "devices", "hub", "text", "__init__"},
    {"settings"}, {"data"}, {"tokenization"}, {"models"}, {"training"}, {"kinds"}, {"scoring"}, {"lessons"},
    {"presentation"}, {"jobs"}, {"integrations"}, {"serving"}, {"cli"},
]


def layer_of(module: str) -> int:
    """The layer of `reviewstars.X[.Y]` (`reviewstars` itself, and a name its __init__ holds
    such as `reviewstars.STARS`: the foundations)."""
    top = module.split(".")[1] if "." in module else "__init__"
    if not ((PACKAGE / top).is_dir() or (PACKAGE / f"{top}.py").is_file()):
        top = "__init__"
    found = [i for i, names in enumerate(LAYERS) if top in names]
    assert found, f"{module}: in no layer; add it to LAYERS (and to the README's layout)"
    return found[0]


def imports_of(path: Path) -> list[str]:
    """Every reviewstars module `path` imports, relative imports resolved."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            found += [target] if node.module else [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module] if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]
            found += [name for name in names if name and name.split(".")[0] == "reviewstars"]
    return found


def test_every_module_belongs_to_a_layer_and_imports_none_of_a_later_one():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        mine = layer_of(module)
        for target in imports_of(path):
            if layer_of(target) > mine:
                upward.append(f"{module} imports {target}")
    assert not upward, "\n".join(upward)


def test_the_check_sees_imports_and_orders_the_layers():
    """The test above would fail on a model importing the report: it is not vacuous."""
    assert layer_of("reviewstars.presentation.report") > layer_of("reviewstars.models.linear")
    assert layer_of("reviewstars") == layer_of("reviewstars.STARS") == 0 and layer_of("reviewstars.cli.main") == len(LAYERS) - 1
    assert "reviewstars.settings.fields" in imports_of(PACKAGE / "models" / "linear.py")
