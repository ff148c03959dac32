"""X (API v2) connector: mentions by polling with cursors, public replies and DMs out."""
