"""The API's SQL: each request is one autocommit statement, one round trip (two for a replayed key)."""
from dataclasses import dataclass
from datetime import datetime
from typing import Optional, Union

from . import idempotency
from .database import Database

INSERT = "INSERT INTO task (title, description) VALUES (%(title)s, %(description)s) RETURNING id"

# The key is claimed first; the task is inserted only for a claimed key, with the id the key row records, so a
# concurrent request with the same key waits for this one's commit (the primary key's insert lock) and then finds
# the key taken. An expired key is claimed again. Up to PRUNE_PER_INSERT expired keys (never this one: a row may
# change once per statement) are deleted on the way; SKIP LOCKED keeps concurrent inserts from waiting on each other.
INSERT_ONCE = f"""
WITH new AS (
    SELECT nextval(pg_get_serial_sequence('task', 'id'))::integer AS id
), claimed AS (
    INSERT INTO idempotency_key AS k (key, request_hash, task_id, created_at)
    SELECT %(key)s, %(request_hash)s, id, now() FROM new
    ON CONFLICT (key) DO UPDATE
        SET request_hash = excluded.request_hash, task_id = excluded.task_id, created_at = excluded.created_at
        WHERE k.created_at <= now() - %(ttl)s
    RETURNING task_id
), created AS (
    INSERT INTO task (id, title, description)
    SELECT task_id, %(title)s, %(description)s FROM claimed
    RETURNING id
), pruned AS (
    DELETE FROM idempotency_key WHERE key IN (
        SELECT key FROM idempotency_key
        WHERE created_at <= now() - %(ttl)s AND key <> %(key)s
        ORDER BY created_at LIMIT {idempotency.PRUNE_PER_INSERT}
        FOR UPDATE SKIP LOCKED
    )
)
SELECT id FROM created
"""

FIND_KEY = """
SELECT k.request_hash, k.task_id, k.created_at, t.title, t.description
FROM idempotency_key k LEFT JOIN task t ON t.id = k.task_id
WHERE k.key = %(key)s
"""

GET = "SELECT id, title, description FROM task WHERE id = %s"
# LIMIT one more than the page: a page that fills up tells whether another follows.
PAGE = "SELECT id, title, description FROM task WHERE id > %s ORDER BY id LIMIT %s"

Row = dict[str, Optional[Union[int, str]]]


@dataclass(frozen=True)
class Replay:
    """A key used before: the task it created, if the request matches."""

    task: Optional[Row]
    matches: bool
    task_id: int
    first_used: datetime


def as_task(row: tuple) -> Row:
    return {"id": row[0], "title": row[1], "description": row[2]}


def create(db: Database, fields: dict[str, Optional[str]]) -> Row:
    with db.cursor() as cursor:
        cursor.execute(INSERT, fields)
        return {"id": cursor.fetchone()[0], **fields}


def create_once(db: Database, fields: dict[str, Optional[str]], key: str) -> Union[Row, Replay]:
    """The new task, or the Replay of the request that used `key` first."""
    request_hash = idempotency.fingerprint(fields)
    parameters = {**fields, "key": key, "request_hash": request_hash, "ttl": idempotency.KEY_TTL}
    with db.cursor() as cursor:
        # A key found taken can expire and be pruned before it is read: then it is free to claim again.
        for _ in range(3):
            cursor.execute(INSERT_ONCE, parameters)
            row = cursor.fetchone()
            if row is not None:
                return {"id": row[0], **fields}
            cursor.execute(FIND_KEY, {"key": key})
            found = cursor.fetchone()
            if found is not None:
                stored_hash, task_id, first_used, title, description = found
                task = None if title is None else {"id": task_id, "title": title, "description": description}
                return Replay(task=task, matches=bytes(stored_hash) == request_hash, task_id=task_id, first_used=first_used)
    raise RuntimeError(f"{idempotency.HEADER} {key!r} was neither claimed nor found in 3 attempts")


def get(db: Database, task_id: int) -> Optional[Row]:
    with db.cursor() as cursor:
        cursor.execute(GET, (task_id,))
        row = cursor.fetchone()
    return None if row is None else as_task(row)


def page(db: Database, after: int, limit: int) -> tuple[list[Row], bool]:
    """Up to `limit` tasks with ids above `after`, in id order, and whether more follow."""
    with db.cursor() as cursor:
        cursor.execute(PAGE, (after, limit + 1))
        rows = cursor.fetchall()
    return [as_task(r) for r in rows[:limit]], len(rows) > limit
