"""The member's own PostgreSQL server, over its Unix socket: the one way the pod's code connects to it."""
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from .settings import Settings


@contextmanager
def cursor(s: Settings, user: str = "postgres", password: Optional[str] = None) -> Iterator[Any]:
    """A cursor on the `postgres` database, autocommit (every caller only reads); the connection closes on exit.
    The superuser `postgres` needs no password over the socket (peer authentication, pg_hba.conf)."""
    import psycopg2  # python3-psycopg2, a dependency of patroni
    conn = psycopg2.connect(host=s.socket_dir, port=s.pgport, user=user, password=password, dbname="postgres", connect_timeout=3)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()
