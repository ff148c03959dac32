"""The bookkeeping every polling run of a connector shares (Bluesky, X, Mastodon, LINE).

A run claims its lease first (each connector its own way), then takes its API client with
`run_client`, which closes a client it made and releases the lease whatever happens; between
pages, `waits_out` stops the run when the platform's window is used up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from madoguchi.connectors.ratelimit import RateLimit


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


@contextmanager
def run_client(client: C | None, make: Callable[[], C], release: Callable[[], None]) -> Iterator[C]:
    """`client`, or one made here (and closed afterwards); `release()` (the run's lease) runs
    when the block ends however it ends, also when making the client failed."""
    made: C | None = None
    try:
        if client is None:
            made = client = make()
        yield client
    finally:
        release()
        if made is not None:
            made.close()


def waits_out(rate: RateLimit, counts: dict[str, Any], save: Callable[..., None]) -> bool:
    """True when the window is used up: `save(wait_until=…)` is called and the wait counted."""
    wait = rate.wait_seconds()
    if wait:
        save(wait_until=time.time() + wait)
        counts["rate_limited_for"] = round(wait)
    return bool(wait)
