"""The Graph API calls of the Facebook Pages connector, on the shared client (graph.py).

Documentation (November 2026):
- Comments, reply to one: https://developers.facebook.com/docs/graph-api/reference/object/comments/ —
  `POST /{object-id}/comments` with `message` → `{"id": "<comment-id>"}`; `GET` the same edge lists
  them (`order=reverse_chronological`, `fields=id,message,from,created_time`).
- Send API: https://developers.facebook.com/docs/messenger-platform/reference/send-api/ —
  `POST /{PAGE-ID}/messages {"recipient": {"id": PSID}, "messaging_type": "RESPONSE",
  "message": {"text"}}` → `{"recipient_id", "message_id"}`; text up to 2,000 characters.
- User profile: https://developers.facebook.com/docs/messenger-platform/identity/user-profile/ —
  `GET /{PSID}?fields=first_name,last_name,profile_pic`.
"""

from __future__ import annotations

from typing import Any

from madoguchi.connectors.facebook.graph import GraphClient


class FacebookClient(GraphClient):
    """The page's side of the Graph API."""

    def profile(self, psid: str) -> dict[str, Any]:
        return self.get(psid, fields="first_name,last_name,name,profile_pic")

    def reply_to_comment(self, object_id: str, text: str) -> str:
        """Comment on a post or reply to a comment; returns the new comment's id."""
        return str(self.post(f"{object_id}/comments", {"message": text})["id"])

    def comments(self, object_id: str) -> list[dict[str, Any]]:
        """The newest comments under a post or comment (to find a reply a timeout hid from us)."""
        data = self.get(f"{object_id}/comments", fields="id,message,from,created_time", order="reverse_chronological", limit=25)
        return [c for c in data.get("data") or [] if isinstance(c, dict)]
