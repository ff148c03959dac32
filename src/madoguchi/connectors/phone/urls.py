from django.urls import path

from madoguchi.connectors.phone import views

app_name = "phone"
urlpatterns = [
    path("<int:account_id>/events/", views.call_events, name="events"),
    path("contacts/<int:contact_id>/log/", views.log_call, name="log"),
]
