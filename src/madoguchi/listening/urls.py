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
    path("restore/", views.restore, name="restore"),
    path("rules/", views.rules, name="rules"),
    path("rules/new/", views.rule_edit, name="rule_new"),
    path("rules/preview/", views.rule_preview, name="rule_preview"),
    path("rules/<int:rule_id>/", views.rule_edit, name="rule_edit"),
    path("rules/<int:rule_id>/delete/", views.rule_delete, name="rule_delete"),
]
