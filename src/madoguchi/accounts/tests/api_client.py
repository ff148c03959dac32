"""The `api` fixture: call the JSON API as a user of the cast, through a real bearer token.

Import it into a test module (`from madoguchi.accounts.tests.api_client import api_fixture  # noqa: F401`).
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from madoguchi.accounts import actions as account_actions


@pytest.fixture(name="api")
def api_fixture(db):
    tokens: dict[int, str] = {}

    def call(user, method: str, url: str, body: dict | None = None, *, raw: bytes | None = None, **params):
        if user.pk not in tokens:
            tokens[user.pk] = account_actions.do_create_token(user, "test")[1]
        client = Client(enforce_csrf_checks=True)
        headers = {"Authorization": f"Bearer {tokens[user.pk]}"}
        if method == "get":
            return client.get(url, params, headers=headers)
        data = raw if raw is not None else json.dumps(body or {})
        return getattr(client, method)(url, data, content_type="application/json", headers=headers)

    return call
