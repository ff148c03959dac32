from django.urls import path

from madoguchi.listening import views

app_name = "listening"
urlpatterns = [
    path("", views.stream, name="stream"),
    path("p/<int:post_id>/", views.post, name="post"),
    path("p/<int:post_id>/respond/", views.respond, name="respond"),
    path("p/<int:post_id>/dismiss/", views.dismiss, name="dismiss"),
    path("p/<int:post_id>/seen/", views.seen, name="seen"),
    path("bulk-dismiss/", views.bulk_dismiss, name="bulk_dismiss"),
    path("rules/", views.rules, name="rules"),
]
