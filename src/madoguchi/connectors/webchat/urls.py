from django.urls import path

from madoguchi.connectors.webchat import views

app_name = "webchat"
urlpatterns = [
    path("widget.js", views.widget_js, name="widget_js"),
    path("widget.css", views.widget_css, name="widget_css"),
    path("api/<str:key>/config/", views.config, name="config"),
    path("api/<str:key>/session/", views.session, name="session"),
    path("api/<str:key>/messages/", views.messages_view, name="messages"),
    path("api/<str:key>/typing/", views.typing, name="typing"),
    path("api/<str:key>/read/", views.read, name="read"),
    path("api/<str:key>/events/", views.events, name="events"),
    path("files/<str:signed>/", views.file, name="file"),
    path("<int:account_id>/settings/", views.settings_page, name="settings"),
    path("<int:account_id>/try/", views.try_page, name="try"),
]
