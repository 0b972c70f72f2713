"""The full-backup schedule: a standard five-field cron expression (minute hour day-of-month month day-of-week) in
UTC, evaluated by croniter (Debian's python3-croniter: 1.3.5 in bookworm, 2.0.7 in trixie; tests/unit/test_schedule.py
passes with either, and both read every schedule accepted here the same way).

Cron's rule for the day fields holds: when both day of month and day of week are restricted (neither is `*`), a day
that matches either fires. The program refuses what `problem` refuses, with the same words
(components/validate.ts, validateCronSchedule): numbers, `*`, ranges, lists and steps only; no day field written `*/n`
or covering every day while the other is restricted (cron implementations, and croniter 1.3.5 against 2.0.7, read
those differently); no day of month that does not occur every year in one of the schedule's months (`0 3 31 2 *`
would never fire, so no full backup would follow the first; `0 3 29 2 *` fires once in four years, and croniter 1.3.5
cannot look back for it).
"""
import re
from typing import Optional

from croniter import croniter, CroniterBadCronError, CroniterBadDateError

from .timestamps import utc

SHAPE = ('expected a 5-field cron expression "minute hour day-of-month month day-of-week" of numbers, *, ranges a-b, '
         'lists a,b and steps */n or a-b/n, such as "0 3 * * *"')
# Each field's name (as the messages give it) and range; weekday 7 is Sunday, as 0 is.
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
ELEMENT = re.compile(r"(\*|(\d+)-(\d+))/(\d+)|\*|(\d+)(?:-(\d+))?")
# A common year (2027, UTC): a day of the month that occurs in it occurs every year.
COMMON_YEAR = (1798761600, 1830297600)


def _values(field: str, low: int, high: int) -> set[int]:
    """The numbers a field of valid elements names (weekday 7 counted as 0)."""
    values: set[int] = set()
    for element in field.split(","):
        m = ELEMENT.fullmatch(element)
        assert m is not None
        if m.group(1):  # a step
            start, end = (low, high) if m.group(1) == "*" else (int(m.group(2)), int(m.group(3)))
            values.update(range(start, end + 1, int(m.group(4))))
        elif element == "*":
            values.update(range(low, high + 1))
        else:
            values.update(range(int(m.group(5)), int(m.group(6) or m.group(5)) + 1))
    return {0 if (v == 7 and high == 7) else v for v in values}


def _element_problem(name: str, low: int, high: int, element: str) -> Optional[str]:
    m = ELEMENT.fullmatch(element)
    if not m:
        return SHAPE
    numbers = [int(n) for n in (m.group(2), m.group(3), m.group(5), m.group(6)) if n is not None]
    if any(n < low or n > high for n in numbers):
        return f"the {name} field allows {low}-{high} (got {element})"
    if len(numbers) == 2 and numbers[0] > numbers[1]:
        return f"the {name} range {element} runs backwards"
    if m.group(4) is not None and not 1 <= int(m.group(4)) <= high:
        return f"the {name} step in {element} must be from 1 to {high}"
    return None


def problem(schedule: str) -> Optional[str]:
    """Why `schedule` is refused (what follows "is not valid; " in the error), or None when it is accepted."""
    fields = re.split(" +", schedule)
    if len(fields) != len(FIELDS):
        return SHAPE
    for field, (name, low, high) in zip(fields, FIELDS, strict=True):
        for element in field.split(","):
            reason = _element_problem(name, low, high, element)
            if reason:
                return reason
    minute, hour, dom, month, dow = fields
    if dom != "*" and dow != "*":
        for field, (name, low, high) in ((dom, FIELDS[2]), (dow, FIELDS[4])):
            if field.startswith("*") or len(_values(field, low, high)) == high - low + (0 if high == 7 else 1):
                return (f"both day fields are restricted, so a day matching either fires; the {name} field {field} "
                        f"{'starts with *' if field.startswith('*') else 'covers every day'}, which cron implementations "
                        "read differently then: write * for every day, or the days themselves (such as "
                        f"{'1-31/2' if name == 'day of month' else '1-5'})")
    try:
        croniter(schedule, 0)
    except CroniterBadCronError as e:  # not expected after the checks above; croniter has the last word
        return f"{SHAPE} ({e})"
    # Whether the day of month fires alone within a common year, so in every year (croniter raises when it finds no
    # such day at all, even with a weekday restricted too).
    try:
        every_year = croniter(f"{minute} {hour} {dom} {month} *", COMMON_YEAR[0] - 1).get_next(float) < COMMON_YEAR[1]
    except CroniterBadDateError:
        every_year = False
    if not every_year:
        return (f"day of month {dom} does not occur every year in month {month}, so the schedule would never fire, or "
                "fire once in four years; expected days that occur every year in those months, such as 1-28")
    return None


def last_firing(schedule: str, now: float) -> float:
    """The latest time at or before `now` (epoch seconds) the schedule fires (a schedule `problem` accepts)."""
    # get_prev is strictly before its start: one second past `now` makes a firing at `now` itself count. croniter
    # 1.3.5's get_prev, stepping back into a leap year's February from a later month, starts at the 28th (`0 3 * 2 *`
    # from 2028-03-10 gives 2028-02-28, not 02-29); get_next does not, so it moves the answer on to the last firing
    # at or before `now`.
    last = croniter(schedule, int(now) + 1).get_prev(float)
    while (after := croniter(schedule, last).get_next(float)) <= now:
        last = after
    return last


def next_firing(schedule: str, now: float) -> float:
    """The first time after `now` the schedule fires."""
    return croniter(schedule, now).get_next(float)


def expected_full_backup(schedule: str, now: float, grace: float) -> float:
    """The firing a full backup must have ended after, at `now`: the latest one at or before `now - grace`, `grace`
    being the time a full backup may take."""
    return last_firing(schedule, now - grace)


def overdue(schedule: str, last_full: Optional[float], now: float, grace: float) -> Optional[str]:
    """Why the last full backup is older than the schedule allows, or None when it is not.

    The schedule allows a full backup to end up to `grace` seconds (the time one may take) after the schedule fired;
    so at `now` a full backup must have ended since the latest firing at or before `now - grace`. `last_full` is when
    the newest full backup in the repository ended, None when it holds none.
    """
    expected = expected_full_backup(schedule, now, grace)
    if last_full is not None and last_full >= expected:
        return None
    last = "none in the repository" if last_full is None else f"ended {utc(last_full)}"
    return (f"the last full backup ({last}) is older than the schedule {schedule!r} allows: it fired at "
            f"{utc(expected)} and no full backup has ended since, {int(grace // 60)} minutes allowed for one")
