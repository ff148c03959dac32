"""Imports every connector so each registers its adapter. Add a new channel here."""

from madoguchi.connectors.email import outbound as _email  # noqa: F401
from madoguchi.connectors.internal import outbound as _internal  # noqa: F401
from madoguchi.connectors.line import outbound as _line  # noqa: F401
from madoguchi.connectors.x import outbound as _x  # noqa: F401
