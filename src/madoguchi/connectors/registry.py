"""Finds every connector: each `connectors/<kind>/` package with an `outbound.py` registers its
adapter when imported, and one with a `urls.py` is served under `/connectors/<kind>/`. Adding a
channel means adding its folder; nothing here changes."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path

_HERE = Path(__file__).parent


def connector_packages() -> list[str]:
    """The names of the connector folders (email, line, x, …), sorted."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(_HERE)])
        if info.ispkg and info.name not in {"migrations", "tests", "static", "templates"}
    )


def _has(kind: str, module: str) -> bool:
    return importlib.util.find_spec(f"madoguchi.connectors.{kind}.{module}") is not None


def with_module(module: str) -> list[str]:
    """The connectors that have `module` (e.g. "urls", "outbound")."""
    return [kind for kind in connector_packages() if _has(kind, module)]


for _kind in with_module("outbound"):
    importlib.import_module(f"madoguchi.connectors.{_kind}.outbound")
