"""Imports every connector so each registers its adapter. Add a new channel here."""

from madoguchi.connectors.internal import outbound as _internal  # noqa: F401
