"""The full-backup schedule: five cron fields (minute hour day month weekday), evaluated in UTC.

Fields are `*`, numbers, ranges and steps, comma-separated; weekday 0 and 7 are Sunday. A field that names both a
day of the month and a weekday must match both (not either, as cron's own rule has it).
"""
import re
import time
from typing import Optional

CRON_FIELD = re.compile(r"(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?)*")


def valid(schedule: str) -> bool:
    """Whether `schedule` is five fields of the syntax above (values out of range are not checked)."""
    fields = schedule.split()
    return len(fields) == 5 and all(CRON_FIELD.fullmatch(f) for f in fields)


def _field_matches(field: str, value: int, low: int, high: int) -> bool:
    for part in field.split(","):
        rng, _, step = part.partition("/")
        if rng == "*":
            lo, hi = low, high
        elif "-" in rng:
            lo, hi = (int(x) for x in rng.split("-"))
        else:
            lo = hi = int(rng)
        if lo <= value <= hi and (value - lo) % int(step or 1) == 0:
            return True
    return False


def cron_matches(fields: list[str], t: time.struct_time) -> bool:
    """Whether struct_time `t` matches five cron fields (minute hour day month weekday; weekday 0/7 = Sunday)."""
    weekday = (t.tm_wday + 1) % 7
    return (_field_matches(fields[0], t.tm_min, 0, 59) and _field_matches(fields[1], t.tm_hour, 0, 23)
            and _field_matches(fields[2], t.tm_mday, 1, 31) and _field_matches(fields[3], t.tm_mon, 1, 12)
            and (_field_matches(fields[4], weekday, 0, 7) or (weekday == 0 and _field_matches(fields[4], 7, 0, 7))))


def last_scheduled(schedule: str, now: float) -> Optional[int]:
    """The latest minute at or before `now` (epoch seconds) the schedule fires, within 31 days, or None."""
    fields = schedule.split()
    minute = int(now) - int(now) % 60
    for i in range(31 * 24 * 60):
        t = minute - 60 * i
        if cron_matches(fields, time.gmtime(t)):
            return t
    return None
