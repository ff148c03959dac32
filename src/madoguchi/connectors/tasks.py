"""Background work shared by every connector: telling admins when a channel needs them."""

from __future__ import annotations

from django_tasks import task

from madoguchi.connectors import health


@task()
def send_health_alerts() -> int:
    """Clock task: email admins about channels that went silent or lost their credentials."""
    return health.do_send_health_alerts()
