"""The layers show in the imports: handlers -> operations -> services -> sessions."""

import ast
import re
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "src" / "app"

# What each layer may import from the app (besides itself). Anything not listed is a violation.
# The path of a request: handlers -> operations -> services -> sessions; runtime, the composition
# root, builds services on sessions and hands them to the handlers.
ALLOWED = {
    "sessions": set(),
    "services": {"sessions"},
    "operations": {"services"},
    "observability": set(),
    "cold_start": set(),
    "runtime": {"services", "sessions", "operations", "cold_start"},
    "handlers": {"runtime", "observability", "operations", "services", "sessions", "cold_start"},
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


def test_of_the_handlers_only_the_invocation_decorator_reaches_the_sessions() -> None:
    """It bounds an invocation's AWS calls by the sessions' deadline; no handler builds or holds
    a session or a client."""
    reaching = {
        str(path.relative_to(APP))
        for path in MODULES
        if _layer(path) == "handlers" and "sessions" in _app_imports(path)
    }
    assert reaching == {"handlers/invocation.py"}


def test_handlers_leave_the_use_cases_to_the_operations() -> None:
    """A handler parses and answers; reading or writing through a service is an operation's job."""
    service_calls = re.compile(r"\b(items|exports|runs|continuations)\.[a-z_]+\(")
    offenders = [
        f"{path.relative_to(APP)}:{number}"
        for path in MODULES
        if _layer(path) == "handlers"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if service_calls.search(line)
    ]
    assert offenders == []


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
