from django.apps import AppConfig


class TextConfig(AppConfig):
    name = "madoguchi.text"
    label = "text"
