"""The Graph API calls of the Instagram connector (Instagram API with Facebook Login), on the
shared client in facebook/graph.py.

Documentation (November 2026):
- Reply to a comment: https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-comment/replies —
  `POST /{ig-comment-id}/replies?message=…` → `{"id"}`; only top-level comments take replies (a reply
  to a reply is added to its top-level comment); `GET` lists them.
- Mentions: https://developers.facebook.com/docs/instagram-platform/instagram-api-with-facebook-login/mentions —
  `GET /{ig-user-id}?fields=mentioned_comment.comment_id({id}){id,text,timestamp,username,from,media{id,permalink}}`,
  `mentioned_media.media_id({id}){caption,username,timestamp,permalink}`, and the reply
  `POST /{ig-user-id}/mentions {comment_id, media_id, message}`.
- Business discovery (followers of other professional accounts):
  https://developers.facebook.com/docs/instagram-platform/instagram-api-with-facebook-login/business-discovery —
  `GET /{ig-user-id}?fields=business_discovery.username({username}){followers_count,name,profile_picture_url}`.
- Messaging: https://developers.facebook.com/docs/instagram-platform/instagram-api-with-facebook-login/messaging-api —
  `POST /{ig-user-id}/messages {"recipient": {"id": IGSID}, "messaging_type": "RESPONSE", "message": {"text"}}`
  (text up to 1,000 bytes); user profile `GET /{IGSID}?fields=name,username,profile_pic,follower_count`.
"""

from __future__ import annotations

from typing import Any

from madoguchi.connectors.facebook.graph import GraphClient


class InstagramClient(GraphClient):
    """The Instagram professional account's side of the Graph API."""

    def profile(self, igsid: str) -> dict[str, Any]:
        return self.get(igsid, fields="name,username,profile_pic,follower_count,is_verified_user")

    def business_profile(self, ig_user_id: str, username: str) -> dict[str, Any]:
        fields = f"business_discovery.username({username}){{followers_count,name,profile_picture_url}}"
        return dict(self.get(ig_user_id, fields=fields).get("business_discovery") or {})

    def mentioned_comment(self, ig_user_id: str, comment_id: str) -> dict[str, Any]:
        fields = f"mentioned_comment.comment_id({comment_id}){{id,text,timestamp,username,from,media{{id,permalink}}}}"
        return dict(self.get(ig_user_id, fields=fields).get("mentioned_comment") or {})

    def mentioned_media(self, ig_user_id: str, media_id: str) -> dict[str, Any]:
        fields = f"mentioned_media.media_id({media_id}){{caption,username,timestamp,permalink,media_product_type}}"
        return dict(self.get(ig_user_id, fields=fields).get("mentioned_media") or {})

    def reply_to_comment(self, comment_id: str, text: str) -> str:
        return str(self.post(f"{comment_id}/replies", {"message": text})["id"])

    def replies(self, comment_id: str) -> list[dict[str, Any]]:
        data = self.get(f"{comment_id}/replies", fields="id,text,username,from,timestamp")
        return [c for c in data.get("data") or [] if isinstance(c, dict)]

    def reply_to_mention(self, ig_user_id: str, comment_id: str, media_id: str, text: str) -> str:
        body = {"comment_id": comment_id, "media_id": media_id, "message": text}
        return str(self.post(f"{ig_user_id}/mentions", body)["id"])
