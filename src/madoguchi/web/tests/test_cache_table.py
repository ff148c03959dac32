"""With MADOGUCHI_CACHE=database, `madoguchi migrate` creates the shared cache's table itself."""

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection

TABLE = "madoguchi_cache_test"


@pytest.mark.django_db(transaction=True)
def test_migrate_creates_the_database_cache_table(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": TABLE}}
    assert TABLE not in connection.introspection.table_names()
    try:
        call_command("migrate", verbosity=0)
        assert TABLE in connection.introspection.table_names()
        caches["default"].set("k", "v")  # a rate limit would now count across processes
        assert caches["default"].get("k") == "v"
        call_command("migrate", verbosity=0)  # a second run leaves the table as it is
        assert caches["default"].get("k") == "v"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")


@pytest.mark.django_db(transaction=True)
def test_the_local_cache_needs_no_table(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    call_command("migrate", verbosity=0)
    assert TABLE not in connection.introspection.table_names()
