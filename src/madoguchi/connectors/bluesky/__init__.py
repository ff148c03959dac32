"""Bluesky (AT Protocol) connector: notifications and DMs polled with cursors, the Jetstream
firehose for listening, replies threaded by root and parent.

An account (`ChannelAccount(kind="bluesky")`) is set up with
- secrets: `identifier` (handle or DID) and `password` (an app password; allow direct messages
  for DMs). The session (`accessJwt`/`refreshJwt`) is kept in `secrets["session"]`.
- config: `did` (the brand's DID, for facet mentions on Jetstream), `service` (PDS, default
  https://bsky.social), `poll_seconds` (default 30), `poll_dms` (poll the chat log),
  `listen_jetstream` (read the firehose for the workspace's listening rules), `jetstream_url`
  (default the public instance), `run_seconds` (length of one Jetstream run, default 50).
Cursors and leases live in `config["notifications"]`, `config["dms"]` and `config["jetstream"]`.
"""
