"""Channel health: states, the Channels page, the banner and the admins' email, once per incident."""

from __future__ import annotations

import datetime as dt

from django.core import mail
from django.utils import timezone

from madoguchi.connectors import health
from madoguchi.connectors.models import ChannelAccount


def _line(cast, name: str = "Acme LINE") -> ChannelAccount:
    return ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind="line", name=name)


def test_refused_token_disconnects_and_alerts_admins_once(cast):
    account = _line(cast)
    health.do_record_channel_error(account, "401 invalid token", disconnected=True)
    assert health.do_send_health_alerts() == 1
    assert mail.outbox[0].to == [cast.admin.email] and "Acme LINE" in mail.outbox[0].subject
    assert "401 invalid token" in mail.outbox[0].body
    assert health.do_send_health_alerts() == 0  # one email per incident, not one per clock tick


def test_recovery_is_announced_and_a_new_incident_alerts_again(cast):
    account = _line(cast)
    health.do_record_channel_error(account, "expired", disconnected=True)
    health.do_send_health_alerts()
    health.do_record_channel_ok(account, sent=True)
    assert health.do_send_health_alerts() == 1 and "works again" in mail.outbox[-1].subject
    health.do_record_channel_error(account, "expired again", disconnected=True)
    assert health.do_send_health_alerts() == 1


def test_a_single_passing_failure_does_not_alert_but_ten_minutes_of_failure_does(cast):
    account = _line(cast)
    health.do_record_channel_ok(account, received=True)
    health.do_record_channel_error(account, "503 from platform")
    assert health.health_of(account).state == "degraded"
    assert health.do_send_health_alerts() == 0
    later = timezone.now() + dt.timedelta(minutes=11)
    assert health.health_of(account, later).alert


def test_alert_email_is_in_the_admins_language(cast):
    cast.admin.language = "ja"
    cast.admin.save()
    health.do_record_channel_error(_line(cast), "expired", disconnected=True)
    health.do_send_health_alerts()
    assert "LINE" in mail.outbox[0].subject and "[madoguchi]" in mail.outbox[0].subject


def test_channels_page_shows_state_to_agents_and_links_only_to_admins(cast, client_for):
    account = _line(cast)
    health.do_record_channel_error(account, "invalid token", disconnected=True)
    page = client_for(cast.agent).get("/channels/").content.decode()
    assert "Acme LINE" in page and "disconnected" in page and "Credentials" not in page
    admin_page = client_for(cast.admin).get("/channels/").content.decode()
    assert "Credentials" in admin_page


def test_banner_on_every_page_while_a_channel_is_disconnected(cast, client_for):
    health.do_record_channel_error(_line(cast), "invalid token", disconnected=True)
    page = client_for(cast.agent).get("/inbox/").content.decode()
    assert 'class="channel-alerts"' in page and "invalid token" in page


def test_second_workspace_sees_nothing_of_the_first(cast, client_for):
    health.do_record_channel_error(_line(cast), "invalid token", disconnected=True)
    page = client_for(cast.agent_b).get("/channels/").content.decode()
    assert "Acme LINE" not in page and "channel-alerts" not in page
