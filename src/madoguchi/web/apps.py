from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _create_cache_table(sender: AppConfig, using: str = "default", verbosity: int = 1, **kwargs: object) -> None:
    """`madoguchi migrate` also creates the shared cache's table when MADOGUCHI_CACHE=database
    (Django's `createcachetable`, which skips a table that exists), so nobody has to remember it."""
    from django.conf import settings
    from django.core.management import call_command

    if any(c["BACKEND"].endswith("DatabaseCache") for c in settings.CACHES.values()):
        call_command("createcachetable", database=using, verbosity=verbosity)


class WebConfig(AppConfig):
    name = "madoguchi.web"
    label = "web"

    def ready(self) -> None:
        post_migrate.connect(_create_cache_table, sender=self)
