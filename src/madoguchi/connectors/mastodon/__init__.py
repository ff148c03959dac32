"""Mastodon connector: mentions, DMs, reactions and hashtag/keyword listening."""
