from django.apps import AppConfig


class KbConfig(AppConfig):
    name = "madoguchi.kb"
    label = "kb"
    verbose_name = "Knowledge base"
