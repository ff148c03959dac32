"""The web chat widget: one script tag puts a chat button on any website; visitors chat with the team."""
