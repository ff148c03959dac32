from django.urls import path

from madoguchi.connectors.line import views

app_name = "line"
urlpatterns = [
    path("<int:account_id>/webhook/", views.webhook, name="webhook"),
]
