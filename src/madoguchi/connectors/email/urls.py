from django.urls import path

from madoguchi.connectors.email import views

app_name = "email"
urlpatterns = [
    path("<int:account_id>/inbound/", views.inbound_mail, name="inbound"),
    path("<int:account_id>/test/", views.test_connection, name="test"),
]
