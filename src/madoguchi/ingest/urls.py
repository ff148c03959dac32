from django.urls import path

from madoguchi.ingest import views

app_name = "ingest"
urlpatterns = [
    path("quarantine/", views.quarantine_list, name="quarantine"),
    path("quarantine/<int:item_id>/resolve/", views.quarantine_resolve, name="quarantine_resolve"),
]
