"""The Instagram webhook endpoints and settings page: Facebook's (facebook/views.py), for the
`instagram` object, routed by the Instagram account's id."""

from __future__ import annotations

from madoguchi.connectors.facebook.views import meta_views
from madoguchi.connectors.instagram import inbound

webhook, app_webhook, settings_page = meta_views("instagram", "instagram", inbound.do_accept_delivery)
