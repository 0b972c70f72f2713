"""`Idempotency-Key` on `POST /tasks`: a retried request returns the task its first attempt created.

A client that got a 503, a timeout or no answer cannot know whether the task was created (a statement sent to a
server that then stopped answering may still commit). Sending the same key again is safe: tasks_api/store.py
records the key in the statement that inserts the task, so the key is stored exactly when the task is, on the
leader and, by synchronous replication, on the standby that may replace it. The same key again answers the first
201 with `Idempotent-Replayed: true`; with a different request, 422.

Keys expire KEY_TTL after their first use; then the key is new again. Expired rows are deleted by the keyed
inserts themselves (PRUNE_PER_INSERT each, oldest first), so no cron job is needed and deletion keeps pace with
the rate keys are created.
"""
import hashlib
import json
import re
from datetime import timedelta
from typing import Optional

from .models import IdempotencyKey
from .pages import echo

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_TTL = timedelta(hours=24)
PRUNE_PER_INSERT = 10
KEY_MAX = IdempotencyKey.__table__.c.key.type.length
KEY_CHARACTERS = "A-Z a-z 0-9 - _ . ~ : + / ="
# Unreserved URL characters plus base64's; a UUID, a ULID or 32 random bytes in base64 all fit.
_KEY = re.compile(r"[A-Za-z0-9\-_.~:+/=]{1,%d}" % KEY_MAX)


def parse_key(header: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    """The key of the request's header (None if absent), or the reason it is not one.

    The IETF draft (draft-ietf-httpapi-idempotency-key-header) sends the key as a structured-field string,
    `"…"`; the quotes are not part of the key, so both spellings name the same one.
    """
    if header is None:
        return None, None
    key = header[1:-1] if len(header) >= 2 and header[0] == header[-1] == '"' else header
    if not _KEY.fullmatch(key):
        return None, (
            f"{HEADER} {echo(header)} is not valid; allowed: 1 to {KEY_MAX} characters from {KEY_CHARACTERS} "
            "(a random UUID is a good key)"
        )
    return key, None


def fingerprint(fields: dict[str, Optional[str]]) -> bytes:
    """SHA-256 of what the request asks for: the same task fields, however the JSON was spelled, match."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"POST /tasks\n{canonical}".encode("utf-8")).digest()
