from django.urls import path

from madoguchi.connectors.facebook import views

app_name = "facebook"
urlpatterns = [
    path("<int:account_id>/webhook/", views.webhook, name="webhook"),
]
