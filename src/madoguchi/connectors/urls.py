from django.urls import path

from madoguchi.connectors import views

app_name = "connectors"
urlpatterns = [
    path("", views.channels, name="channels"),
]
