"""What the platform API clients (Bluesky, LINE, Mastodon, X) share: one `httpx.Client` that
`close()` or a `with` block closes, and how to tell a call that may have landed from one that
never reached the platform."""

from __future__ import annotations

from typing import Self

import httpx


class ApiClient:
    """The lifecycle of a platform client; the subclass makes `self._http` in its `__init__`."""

    _http: httpx.Client

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def may_have_landed(exc: httpx.HTTPError) -> bool:
    """True unless the request surely never reached the platform (the connection itself failed):
    a timeout or a lost answer may follow a call the platform did carry out."""
    return not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
