"""The packages import their submodules on first use (PEP 562; README "Performance"), exactly
(mutation survivors): a name resolves to the submodule's object and stays, an unknown name is an
AttributeError that names it."""

import importlib

import pytest

PACKAGES = {
    "app.operations": ("ItemNotFoundError", "errors"),
    "app.services": ("DependencyError", "errors"),
    "app.sessions": ("AssumeRoleError", "errors"),
}


@pytest.mark.parametrize("package_name", PACKAGES)
def test_a_lazy_name_is_the_submodules_object_and_stays_in_the_package(package_name: str) -> None:
    package = importlib.import_module(package_name)
    name, submodule = PACKAGES[package_name]
    value = package.__getattr__(name)
    assert value is getattr(importlib.import_module(f"{package_name}.{submodule}"), name)
    assert vars(package)[name] is value


@pytest.mark.parametrize("package_name", PACKAGES)
def test_an_unknown_name_is_an_attribute_error_naming_it(package_name: str) -> None:
    package = importlib.import_module(package_name)
    with pytest.raises(AttributeError) as raised:
        package.__getattr__("no_such_name")
    assert str(raised.value) == f"module {package_name!r} has no attribute 'no_such_name'"
