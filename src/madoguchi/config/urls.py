from django.contrib import admin
from django.urls import include, path

from madoguchi.config.api import api
from madoguchi.web import views as web_views

urlpatterns = [
    path("", web_views.home, name="home"),
    path("", include("madoguchi.accounts.urls")),
    path("inbox/", include("madoguchi.inbox.urls")),
    path("contacts/", include("madoguchi.contacts.urls")),
    path("ingest/", include("madoguchi.ingest.urls")),
    path("listening/", include("madoguchi.listening.urls")),
    path("connectors/email/", include("madoguchi.connectors.email.urls")),
    path("connectors/line/", include("madoguchi.connectors.line.urls")),
    path("connectors/x/", include("madoguchi.connectors.x.urls")),
    path("", include("madoguchi.kb.urls")),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]
