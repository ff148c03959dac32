"""Facebook Pages connector: page feed comments, visitor posts and Messenger through signed Graph webhooks; comment replies and messages out."""
