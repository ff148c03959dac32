"""The web chat widget: one script tag puts a chat button on any website; visitors chat with the team.

Connecting it: create a ChannelAccount of kind "webchat" (admin), open Channels → Settings
(/connectors/webchat/<account id>/settings/), list the websites allowed to show it (origins), set
the business hours, and paste the tag shown there into the website's pages:

    <script src="https://helpdesk.example/connectors/webchat/widget.js" data-key="wk_…" async></script>

Files: widget.py (key, visitor token, origins, rate limits), hours.py (business hours),
inbound.py (visitor messages, read marks, typing → ingest), outbound.py (replies through the
outbox), queries.py (what a visitor may read), live.py (the visitor's SSE stream), views.py and
urls.py (the widget API and the settings page), fake.py (a scripted visitor for tests and the
demo); the widget itself is connectors/static/madoguchi/webchat/widget.js and widget.css.
With several web processes, point Django's CACHES at a shared cache so rate limits are shared.
"""
