"""Timestamps as the pod writes and reads them: UTC, ISO 8601, whole seconds, a trailing Z."""
import time
from datetime import datetime
from typing import Optional

UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc(epoch: Optional[float] = None) -> str:
    """`epoch` (seconds; now when None) as 2026-11-24T14:01:00Z: logs, annotations, events, messages."""
    return time.strftime(UTC_FORMAT, time.gmtime(epoch))


def parse(text: str) -> datetime:
    """An ISO 8601 time with its UTC offset (RESTORE_TARGET_TIME); a trailing Z is read as +00:00."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
