from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "madoguchi.ingest"
    label = "ingest"
