from django.urls import path

from madoguchi.contacts import views

app_name = "contacts"
urlpatterns = [
    path("", views.contact_list, name="list"),
    path("<int:contact_id>/", views.contact_detail, name="detail"),
    path("<int:contact_id>/merge/", views.merge, name="merge"),
    path("merges/<int:log_id>/undo/", views.undo_merge, name="undo_merge"),
]
