import re

import pytest
from django.core import mail
from django.test import Client

from madoguchi.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_with_email_and_password_lands_in_the_inbox(cast):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/")
    token = page.cookies["csrftoken"].value
    response = client.post("/login/", {"username": "agent@acme.example", "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response.url == "/inbox/"


def test_wrong_password_shows_a_clear_error(cast):
    client = Client()
    response = client.post("/login/", {"username": "agent@acme.example", "password": "nope"})
    assert response.status_code == 200 and b"didn" in response.content


def test_password_reset_by_email(cast):
    client = Client()
    client.post("/password-reset/", {"email": "agent@acme.example"})
    assert len(mail.outbox) == 1
    link = re.search(r"/password-reset/[^/]+/[^/]+/", mail.outbox[0].body).group(0)
    form = client.get(link, follow=True)
    new = "a brand new passphrase 42"
    client.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert Client().login(username="agent@acme.example", password=new)


def test_password_is_hashed_with_argon2(cast, settings):
    from madoguchi.config import settings as project_settings

    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
    cast.agent.set_password("another long passphrase")
    assert cast.agent.password.startswith("argon2")


def test_user_language_preference_wins_over_the_browser(cast, client_for):
    client = client_for(cast.agent)
    cast.agent.language = "ja"
    cast.agent.save()
    response = client.get("/settings/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.headers["Content-Language"] == "ja"
