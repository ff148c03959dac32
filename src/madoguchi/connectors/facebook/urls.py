from django.urls import path

from madoguchi.connectors.facebook import views

app_name = "facebook"
urlpatterns = [
    path("webhook/", views.app_webhook, name="app_webhook"),
    path("<int:account_id>/webhook/", views.webhook, name="webhook"),
    path("<int:account_id>/settings/", views.settings_page, name="settings"),
]
