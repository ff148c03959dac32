from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "madoguchi.inbox"
    label = "inbox"
