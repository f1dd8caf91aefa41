"""The layers show in the imports: handlers -> runtime/operations -> services -> sessions."""

import ast
import re
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "src" / "app"

# What each layer may import from the app (besides itself). Anything not listed is a violation.
ALLOWED = {
    "sessions": set(),
    "services": {"sessions"},
    "models": set(),
    "observability": set(),
    "operations": {"models", "services"},
    "table_export": {"services"},
    "invocation": {"sessions"},
    "runtime": {"services", "sessions", "table_export"},
    "handlers": {
        "runtime",
        "invocation",
        "models",
        "observability",
        "operations",
        "services",
        "table_export",
    },
}


def _layer(path: Path) -> str:
    return path.relative_to(APP).parts[0].removesuffix(".py")


def _app_imports(path: Path) -> set[str]:
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "app" and len(parts) > 1:
                layers.add(parts[1])
    return layers


MODULES = sorted(
    path for path in APP.rglob("*.py") if path.parent != APP or path.name != "__init__.py"
)


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(APP)))
def test_imports_point_one_way(path: Path) -> None:
    layer = _layer(path)
    assert layer in ALLOWED, f"{layer} is a new layer: add it to ALLOWED with its rule"
    assert _app_imports(path) - {layer} <= ALLOWED[layer]


def test_only_the_sessions_layer_builds_clients_or_sessions() -> None:
    building = re.compile(r"boto3\.(client|resource|Session)\(|\.client\(|\.create_client\(")
    offenders = [
        f"{path.relative_to(APP)}:{number}"
        for path in MODULES
        if _layer(path) != "sessions"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if building.search(line)
    ]
    assert offenders == []


def test_nothing_uses_the_default_session_or_a_one_shot_assume_role() -> None:
    for path in MODULES:
        text = path.read_text()
        assert not re.search(r"boto3\.(client|resource)\(", text), path
        assert not re.search(r"\bassume_role\(", text), path
