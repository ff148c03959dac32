from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "madoguchi.webhooks"
    label = "webhooks"

    def ready(self) -> None:
        from madoguchi.inbox.events import live_event_published
        from madoguchi.webhooks import actions

        live_event_published.connect(actions.on_live_event, dispatch_uid="webhooks.on_live_event")
