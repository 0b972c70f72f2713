"""Connections to PostgreSQL: how they are opened, checked and given up, for the API and for the CLI.

The API runs one autocommit statement per request on a DBAPI connection from a small pool (tasks_api/store.py):
no ORM session, no transaction to begin or end, one round trip. Every wait is bounded:

- dialling, TLS and authentication by connect_timeout;
- a peer that vanished (packets dropped, no RST) by TCP keepalives on idle connections and tcp_user_timeout on
  unacknowledged data;
- a statement the server is slow to finish by statement_timeout and lock_timeout, set per session at connect
  time, so the server cancels it and the outcome is known (rolled back);
- a server that acknowledges packets but never answers by the request's deadline (tasks_api/deadline.py).
"""
import logging
import select
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import psycopg2
import psycopg2.errors
import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

from . import deadline
from .settings import IDLE_IN_TRANSACTION_TIMEOUT_MS, Settings

log = logging.getLogger(__name__)

# SQLSTATE read_only_sql_transaction: the server the read-write Service led to is a replica, which is what a
# client sees for a moment during a failover (the new leader is still promoting, or the old one was demoted).
READ_ONLY_SQL_TRANSACTION = "25006"
TCP_USER_TIMEOUT_MS = 5000


class DatabaseUnavailable(Exception):
    """The request's database work failed in a way a retry may not: answer 503 with Retry-After."""


def transport_parameters(settings: Settings) -> dict[str, Any]:
    """libpq parameters for every connection, the CLI's included; a parameter DATABASE_URL sets wins."""
    return {
        "connect_timeout": settings.connect_timeout,
        # An idle connection to a host that vanished is found within about idle + count * interval seconds
        # (or tcp_user_timeout, whichever ends first), so the pool replaces it before a request gets it.
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        # Data unacknowledged for this long aborts the connection (a request in flight to a vanished host); also
        # ends keepalive probing. The API's requests have their deadline besides; the CLI has only this.
        "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
    }


def session_options(settings: Settings) -> str:
    """libpq `options` for the API's sessions (not the CLI's: a migration may legitimately run long)."""
    return (
        f"-c statement_timeout={settings.statement_timeout_ms}"
        f" -c lock_timeout={settings.lock_timeout_ms}"
        f" -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"
    )


def add_connect_defaults(engine: Engine, parameters: dict[str, Any], options: str = "", connect_timeout: Optional[float] = None) -> None:
    """Opens the engine's connections with `parameters` (unless the URL sets them) and `options` appended to the
    URL's, within `connect_timeout` seconds: in psycopg2's green mode libpq does not enforce connect_timeout."""

    @event.listens_for(engine, "do_connect")
    def connect(dialect, connection_record, cargs, cparams):
        for name, value in parameters.items():
            cparams.setdefault(name, value)
        if options:
            cparams["options"] = f"{cparams.get('options', '')} {options}".strip()
        if connect_timeout is None:
            return dialect.connect(*cargs, **cparams)
        with deadline.bounded(connect_timeout, "DB_CONNECT_TIMEOUT"):
            return dialect.connect(*cargs, **cparams)


def is_dead(dbapi_connection: Any) -> bool:
    """True when an idle connection is closed or has something to read: the server closed it (restart, failover,
    pg_terminate_backend), or the kernel reported an error (keepalives found the host gone). One poll(2), where
    pool_pre_ping costs a round trip per request and would wait on a hung server."""
    if dbapi_connection.closed:
        return True
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def api_engine(settings: Settings) -> Engine:
    """The API's pool: autocommit connections, checked without a round trip at checkout."""
    engine = sa.create_engine(
        settings.database_url,
        isolation_level="AUTOCOMMIT",
        pool_size=settings.pool_size,
        max_overflow=0,
        # Bounded by the request's deadline too; a pool as large as the worker's threads never waits.
        pool_timeout=settings.query_timeout,
        pool_pre_ping=False,
    )
    # pg_stat_activity tells the API's sessions from the migration Job's and from people's.
    parameters = {**transport_parameters(settings), "application_name": "tasks-api"}
    add_connect_defaults(engine, parameters, session_options(settings), settings.connect_timeout)

    @event.listens_for(engine, "checkout")
    def checkout(dbapi_connection, connection_record, connection_proxy):
        if is_dead(dbapi_connection):
            # The pool reconnects this slot once and checks again before giving up.
            raise exc.DisconnectionError("the server closed the pooled connection")

    return engine


class Database:
    """The API's access to PostgreSQL: a cursor on a pooled autocommit connection, within the request's deadline."""

    def __init__(self, engine: Engine, settings: Settings):
        self.engine = engine
        self.settings = settings

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A psycopg2 cursor; a failure a retry may cure becomes DatabaseUnavailable, anything else propagates."""
        with deadline.bounded(self.settings.query_timeout, "DB_QUERY_TIMEOUT"):
            try:
                connection = self.engine.raw_connection()
            except exc.TimeoutError as e:
                # Every connection of this worker is busy: overload, not a failed server; the pool stays.
                raise self._unavailable(e, drop_pool=False) from e
            except (exc.SQLAlchemyError, psycopg2.Error) as e:
                raise self._unavailable(e, drop_pool=True) from e
            try:
                with connection.cursor() as cursor:
                    yield cursor
            except psycopg2.Error as e:
                dbapi_connection = connection.dbapi_connection
                if isinstance(e, (psycopg2.errors.QueryCanceled, psycopg2.errors.LockNotAvailable)) and not dbapi_connection.closed:
                    # statement_timeout or lock_timeout: the server cancelled the statement (rolled back) and
                    # the connection is fine.
                    raise self._unavailable(e, drop_pool=False) from e
                if isinstance(e, (psycopg2.OperationalError, psycopg2.InterfaceError)) or dbapi_connection.closed or e.pgcode == READ_ONLY_SQL_TRANSACTION:
                    connection.invalidate()
                    raise self._unavailable(e, drop_pool=True) from e
                raise
            finally:
                # Back to the pool (a no-op after invalidate()).
                connection.close()

    def _unavailable(self, e: BaseException, drop_pool: bool) -> DatabaseUnavailable:
        reason = str(getattr(e, "orig", None) or e).strip()
        if getattr(e, "pgcode", None) == READ_ONLY_SQL_TRANSACTION:
            log.warning("database is read-only, a failover is under way: %s", reason)
        else:
            log.warning("database unavailable: %s", reason)
        if drop_pool:
            # Every pooled connection may lead to the same hung, gone or demoted server (a connection outlives a
            # change of the Service's endpoints): drop them all, so the next request dials the Service again.
            self.engine.dispose()
        return DatabaseUnavailable(reason)
