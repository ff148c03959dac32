"""URLs that fail on purpose, for the error-page tests."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.urls import path


def forbidden(request):
    raise PermissionDenied


def broken(request):
    raise RuntimeError("broken on purpose")


urlpatterns = [path("forbidden/", forbidden), path("broken/", broken)]
