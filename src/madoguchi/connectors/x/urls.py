from django.urls import path

from madoguchi.connectors.x import views

app_name = "x"
urlpatterns = [
    path("<int:account_id>/webhook/", views.webhook, name="webhook"),
]
