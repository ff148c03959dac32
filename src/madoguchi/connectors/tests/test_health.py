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


# --- a credential check without traffic counts as working ---------------------------------------


def test_a_successful_credential_check_makes_a_degraded_account_connected_again(cast):
    account = _line(cast)
    health.do_record_channel_error(account, "503 from platform")
    assert health.channel_state(account) == "degraded"
    health.do_record_channel_ok(account, checked=True)
    fresh = ChannelAccount.objects.get(pk=account.pk)
    assert health.channel_state(fresh) == "connected"
    assert fresh.last_receive_at is None and fresh.last_send_at is None  # nothing was received or sent
    state = health.health_of(fresh)
    assert state.state == "connected" and state.last_ok == dt.datetime.fromisoformat(fresh.config["checked_ok_at"])


def test_a_credential_check_reconnects_a_disconnected_account_and_a_later_error_degrades_it(cast):
    account = _line(cast)
    health.do_record_channel_error(account, "expired", disconnected=True)
    health.do_record_channel_ok(account, checked=True)
    fresh = ChannelAccount.objects.get(pk=account.pk)
    assert health.channel_state(fresh) == "connected" and "health" not in fresh.config
    health.do_record_channel_error(fresh, "timeout")
    assert health.channel_state(ChannelAccount.objects.get(pk=account.pk)) == "degraded"


def test_a_webhook_that_proves_no_token_does_not_count_as_a_check(cast):
    account = _line(cast)
    health.do_record_channel_error(account, "expired", disconnected=True)
    health.do_record_channel_ok(account, received=True, reconnect=False)
    fresh = ChannelAccount.objects.get(pk=account.pk)
    assert health.channel_state(fresh) == "disconnected" and "checked_ok_at" not in fresh.config
