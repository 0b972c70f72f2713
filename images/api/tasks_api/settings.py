"""The app's settings, read once from the environment the Kubernetes Secret and the Deployment provide."""
from dataclasses import dataclass
from typing import Mapping

from sqlalchemy.engine import URL, make_url


@dataclass(frozen=True)
class Settings:
    database_url: str
    # Connections per gunicorn worker process: one per thread, so a request never waits for one.
    pool_size: int
    # libpq's connect_timeout (whole seconds, libpq's minimum is 2): dialling, TLS and authentication.
    connect_timeout: int
    # The client-side bound on a request's database work (pool checkout, connect, statements): the one wait a
    # server that accepts TCP but never answers cannot stretch (tasks_api/deadline.py).
    query_timeout: float

    @property
    def statement_timeout_ms(self) -> int:
        """The server cancels a statement before the client gives up, so a slow statement is known undone."""
        return max(500, int(self.query_timeout * 1000) - 1000)

    @property
    def lock_timeout_ms(self) -> int:
        return max(250, self.statement_timeout_ms // 2)


# idle_in_transaction_session_timeout: the API never leaves a transaction open between statements; a session that
# does (a worker killed mid-transaction behind a proxy) must not hold its locks for long.
IDLE_IN_TRANSACTION_TIMEOUT_MS = 10000


def database_url(env: Mapping[str, str]) -> str:
    """DATABASE_URL if set, else a URL built from the tutorial's POSTGRES_* variables."""
    url = env.get("DATABASE_URL", "").strip()
    if url:
        # Heroku-style "postgres://" is refused by SQLAlchemy 1.4.
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://"):]
        if make_url(url).get_backend_name() != "postgresql":
            raise RuntimeError("DATABASE_URL must be a postgresql:// URL")
        return url
    names = ("POSTGRES_HOST", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD")
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise RuntimeError(f"set DATABASE_URL, or all of {', '.join(names)} (missing: {', '.join(missing)})")
    # URL.create escapes the password; an f-string would break on '@', ':' or '/'.
    return URL.create(
        "postgresql",
        username=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"],
        host=env["POSTGRES_HOST"],
        port=int(env.get("POSTGRES_PORT") or 5432),
        database=env["POSTGRES_DB"],
    ).render_as_string(hide_password=False)


def _number(env: Mapping[str, str], name: str, default: str, low: float, high: float, integer: bool) -> float:
    raw = env.get(name, "").strip() or default
    kind = "an integer" if integer else "a number"
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise RuntimeError(f"{name} is {raw!r}; allowed: {kind} from {low:g} to {high:g}")
    return value


def load(env: Mapping[str, str]) -> Settings:
    return Settings(
        database_url=database_url(env),
        # One connection per gunicorn thread (gunicorn.conf.py reads GUNICORN_THREADS too).
        pool_size=int(_number(env, "DB_POOL_SIZE", env.get("GUNICORN_THREADS", "").strip() or "4", 1, 64, integer=True)),
        connect_timeout=int(_number(env, "DB_CONNECT_TIMEOUT", "5", 2, 60, integer=True)),
        query_timeout=_number(env, "DB_QUERY_TIMEOUT", "3", 1, 60, integer=False),
    )
