"""Bluesky (AT Protocol) connector: notifications and DMs polled with cursors, the Jetstream firehose for listening, replies threaded by root and parent."""
