from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "madoguchi.contacts"
    label = "contacts"
