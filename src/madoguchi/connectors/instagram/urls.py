from django.urls import path

from madoguchi.connectors.instagram import views

app_name = "instagram"
urlpatterns = [
    path("<int:account_id>/webhook/", views.webhook, name="webhook"),
]
