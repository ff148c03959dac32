from django.urls import path

from madoguchi.connectors.webform import views

app_name = "webform"
urlpatterns = [
    path("<int:brand_id>/", views.contact_form, name="form"),
    path("<int:brand_id>/embed/", views.embed_form, name="embed"),
    path("<int:account_id>/settings/", views.form_settings, name="settings"),
]
