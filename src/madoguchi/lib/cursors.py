"""A named position in an append-only table, kept in the database so that every process reads and
moves the same one. Each app that reads such a table has its own concrete model (its own table);
the behaviour is here once."""

from __future__ import annotations

from django.db import models


class Cursor(models.Model):
    name = models.CharField(max_length=64, unique=True)
    value = models.BigIntegerField(default=0)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.name}={self.value}"

    @classmethod
    def read(cls, name: str) -> int:
        """Where `name` stands (0 before its first move)."""
        return cls._default_manager.filter(name=name).values_list("value", flat=True).first() or 0

    @classmethod
    def advance(cls, name: str, value: int) -> None:
        """Move `name` to `value`, never backwards (two processes may finish out of order)."""
        cursor, _created = cls._default_manager.get_or_create(name=name)
        cls._default_manager.filter(pk=cursor.pk, value__lt=value).update(value=value)
