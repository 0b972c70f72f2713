"""A client-side deadline on every wait for PostgreSQL, for a server that accepts TCP but never answers.

TCP keepalives and tcp_user_timeout notice a peer that is gone (nothing is acknowledged), statement_timeout a
statement the server is slow to finish; none notices a server whose kernel still acknowledges every packet while
PostgreSQL itself does not run (SIGSTOPped, a stuck disk, a frozen VM whose host still answers). libpq blocks in
recv() for as long as that lasts.

psycopg2 lets the application do the waiting (`set_wait_callback`, its "green" mode): libpq then never blocks,
and `wait` below polls the socket until the deadline of the current `bounded()` block. Past it, it raises
`DeadlineExceeded`; psycopg2 closes the connection when a wait callback raises, so it is never reused. Outside a
`bounded()` block (the CLI: migrations may run long) waits are unbounded, as libpq's own would be.
"""
import select
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Optional

import psycopg2
from psycopg2 import extensions

_local = threading.local()


class DeadlineExceeded(psycopg2.OperationalError):
    """The database did not answer within the deadline; the connection is closed and the outcome unknown."""


@contextmanager
def bounded(seconds: float, what: str) -> Iterator[None]:
    """Waits for the database inside the block end `seconds` from now at the latest (or at an enclosing block's end)."""
    outer: Optional[tuple[float, str]] = getattr(_local, "deadline", None)
    mine = (time.monotonic() + seconds, f"{what} ({seconds:g} s)")
    _local.deadline = mine if outer is None or mine[0] < outer[0] else outer
    try:
        yield
    finally:
        _local.deadline = outer


def wait(connection: extensions.connection) -> None:
    """psycopg2's wait callback: drive libpq's non-blocking state machine until done or past the deadline."""
    deadline: Optional[tuple[float, str]] = getattr(_local, "deadline", None)
    while True:
        state = connection.poll()
        if state == extensions.POLL_OK:
            return
        if state == extensions.POLL_READ:
            events = select.POLLIN
        elif state == extensions.POLL_WRITE:
            events = select.POLLOUT
        else:
            raise psycopg2.OperationalError(f"unexpected state from psycopg2's poll(): {state!r}")
        timeout_ms = None
        if deadline is not None:
            timeout_ms = max(0, int((deadline[0] - time.monotonic()) * 1000))
        poller = select.poll()
        poller.register(connection.fileno(), events)
        if not poller.poll(timeout_ms) and deadline is not None:
            raise DeadlineExceeded(f"no answer from the database within {deadline[1]}")


def install() -> None:
    """Makes every psycopg2 connection of this process wait through `wait` (idempotent)."""
    extensions.set_wait_callback(wait)
