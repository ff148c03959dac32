from django.apps import AppConfig


class ListeningConfig(AppConfig):
    name = "madoguchi.listening"
    label = "listening"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from madoguchi.ingest.models import Post
        from madoguchi.listening import actions

        # Captured posts are announced to open stream pages (a "new posts" pill), after commit.
        post_save.connect(actions.on_post_saved, sender=Post, dispatch_uid="listening.on_post_saved")
