from django.contrib import admin
from django.urls import include, path

from madoguchi.config.api import api
from madoguchi.connectors.registry import with_module as _with_module
from madoguchi.web import views as web_views


def connector_urls() -> list[str]:
    """Every connector folder with a urls.py is served under /connectors/<kind>/."""
    return _with_module("urls")


urlpatterns = [
    path("", web_views.home, name="home"),
    path("", include("madoguchi.accounts.urls")),
    path("inbox/", include("madoguchi.inbox.urls")),
    path("contacts/", include("madoguchi.contacts.urls")),
    path("ingest/", include("madoguchi.ingest.urls")),
    path("listening/", include("madoguchi.listening.urls")),
    path("channels/", include("madoguchi.connectors.urls")),
    *[
        path(f"connectors/{kind}/", include(f"madoguchi.connectors.{kind}.urls"))
        for kind in connector_urls()
    ],
    path("", include("madoguchi.kb.urls")),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]
