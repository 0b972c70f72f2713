"""schedule: the cron schedules the pod accepts and refuses, when they fire (croniter, UTC), and when the last full
backup is overdue."""
import calendar
import datetime
import importlib.metadata
import time
import unittest

import pod_path  # noqa: F401
from postgres_pod.schedule import SHAPE, last_firing, next_firing, overdue, problem

import croniter


def epoch(text: str) -> int:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def croniter_version() -> str:
    return importlib.metadata.version("croniter")


def utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def firings(schedule: str, start: str, end: str) -> list[str]:
    """Every firing in [start, end), found backwards from `end` with last_firing."""
    found, t = [], epoch(end) - 1
    while True:
        f = last_firing(schedule, t)
        if f < epoch(start):
            return found[::-1]
        found.append(utc(f))
        t = f - 1


class Syntax(unittest.TestCase):
    def test_five_fields_of_numbers_ranges_steps_and_lists(self):
        for schedule in ("0 3 * * *", "*/15 1-5 * * 0,7", "0 3 1-7/2 1,6 *", "30 2 * * 1-5", "*/15 1-5/2 1,15 * 0,7",
                         "59 23 31 12 7", "0 3 28 2 *", "0 3 29 2,3 *", "0 3 31 1-12 *", "0 3 * * 0-6", "0 3 1-31/2 * 1"):
            with self.subTest(schedule):
                self.assertIsNone(problem(schedule))

    def test_anything_else_is_refused_with_the_programs_words(self):
        for schedule, reason in (
            ("0 3 * *", SHAPE), ("0 3 * * * *", SHAPE), ("@daily", SHAPE), ("0 3 * * mon", SHAPE), ("0 3 * jan *", SHAPE),
            ("0 3 ? * *", SHAPE), ("", SHAPE), ("5/10 * * * *", SHAPE), ("0,3 * * * -1", SHAPE),
            ("0 24 * * *", "the hour field allows 0-23 (got 24)"),
            ("0 3 * * 5-1", "the day of week range 5-1 runs backwards"),
            ("*/0 * * * *", "the minute step in */0 must be from 1 to 59"),
            ("*/60 * * * *", "the minute step in */60 must be from 1 to 59"),
        ):
            with self.subTest(schedule):
                self.assertEqual(problem(schedule), reason)

    def test_a_schedule_that_never_fires_or_skips_years_is_refused(self):
        for schedule, dom, month in (("0 3 31 2 *", "31", "2"), ("0 3 30 2 *", "30", "2"), ("0 3 31 4 *", "31", "4"),
                                     ("0 3 31 4,6,9,11 *", "31", "4,6,9,11"), ("0 3 30-31 2 *", "30-31", "2"),
                                     ("0 3 29 2 *", "29", "2"),
                                     # croniter cannot evaluate the day of month, so a weekday does not rescue it
                                     ("0 3 31 2 1", "31", "2")):
            with self.subTest(schedule):
                self.assertEqual(problem(schedule), f"day of month {dom} does not occur every year in month {month}, so the "
                                                    "schedule would never fire, or fire once in four years; expected days that "
                                                    "occur every year in those months, such as 1-28")

    def test_a_day_field_read_differently_by_cron_implementations_is_refused_when_both_are_restricted(self):
        # croniter 1.3.5 reads a day field that covers every day as *, 2.0.7 (and cron-parser) as restricted; Vixie
        # cron reads */n as *, croniter and cron-parser as restricted.
        for schedule, name, field, how, example in (
            ("0 3 1-31 * 1", "day of month", "1-31", "covers every day", "1-31/2"),
            ("0 3 1 * 0-6", "day of week", "0-6", "covers every day", "1-5"),
            ("0 3 1 * 1-7", "day of week", "1-7", "covers every day", "1-5"),
            ("0 3 1 * 0,1,2,3,4,5,6", "day of week", "0,1,2,3,4,5,6", "covers every day", "1-5"),
            ("0 3 */2 * 1", "day of month", "*/2", "starts with *", "1-31/2"),
            ("0 3 1 * */1", "day of week", "*/1", "starts with *", "1-5"),
        ):
            with self.subTest(schedule):
                self.assertEqual(problem(schedule), f"both day fields are restricted, so a day matching either fires; the {name} "
                                                    f"field {field} {how}, which cron implementations read differently then: "
                                                    f"write * for every day, or the days themselves (such as {example})")


class Firing(unittest.TestCase):
    def test_day_of_month_or_day_of_week_when_both_are_restricted(self):
        # Cron's rule: the 1st, the 15th and every Sunday. 2027 has 52 Sundays and 24 days that are the 1st or the
        # 15th, two of them Sundays (Aug 1, Aug 15): 74 firings (the hand-written matcher ANDed them: 2).
        got = firings("0 3 1,15 * 0", "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z")
        day = datetime.date(2027, 1, 1)
        expected = []
        while day.year == 2027:
            if day.day in (1, 15) or day.weekday() == 6:
                expected.append(f"{day.isoformat()}T03:00:00Z")
            day += datetime.timedelta(days=1)
        self.assertEqual(len(expected), 74)
        self.assertEqual(got, expected)

    def test_a_restricted_day_of_month_alone_is_anded_with_every_weekday(self):
        self.assertEqual(firings("0 3 1 * *", "2027-01-01T00:00:00Z", "2027-04-01T00:00:00Z"),
                         ["2027-01-01T03:00:00Z", "2027-02-01T03:00:00Z", "2027-03-01T03:00:00Z"])
        # 2027-01: Mondays 4, 11, 18, 25.
        self.assertEqual(firings("0 3 * * 1", "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"),
                         ["2027-01-04T03:00:00Z", "2027-01-11T03:00:00Z", "2027-01-18T03:00:00Z", "2027-01-25T03:00:00Z"])

    def test_weekday_0_and_7_are_sunday(self):
        for schedule in ("0 3 * * 0", "0 3 * * 7"):
            with self.subTest(schedule):
                self.assertEqual(utc(last_firing(schedule, epoch("2026-12-01T00:00:00Z"))), "2026-11-29T03:00:00Z")

    def test_the_latest_firing_at_or_before_now(self):
        self.assertEqual(utc(last_firing("0 3 * * *", epoch("2026-11-24T14:01:30Z"))), "2026-11-24T03:00:00Z")
        self.assertEqual(utc(last_firing("0 3 * * *", epoch("2026-11-24T03:00:00Z"))), "2026-11-24T03:00:00Z")
        self.assertEqual(utc(last_firing("0 3 * * *", epoch("2026-11-24T03:00:00Z") + 0.5)), "2026-11-24T03:00:00Z")
        self.assertEqual(utc(last_firing("0 3 * * *", epoch("2026-11-24T02:59:59Z"))), "2026-11-23T03:00:00Z")
        self.assertEqual(utc(last_firing("*/15 * * * *", epoch("2026-11-24T14:44:59Z"))), "2026-11-24T14:30:00Z")

    def test_a_yearly_schedule_is_found_however_far_back(self):
        # The hand-written matcher looked back 31 days only: a yearly schedule never fired again.
        self.assertEqual(utc(last_firing("0 3 1 1 *", epoch("2026-11-24T14:01:00Z"))), "2026-01-01T03:00:00Z")

    def test_29_february_is_found_looking_back_from_march(self):
        self.assertEqual(utc(last_firing("0 3 * 2 *", epoch("2028-03-10T00:00:00Z"))), "2028-02-29T03:00:00Z")
        self.assertEqual(utc(last_firing("0 */6 * 2 *", epoch("2028-03-10T00:00:00Z"))), "2028-02-29T18:00:00Z")
        self.assertEqual(utc(last_firing("0 3 29 2,3 *", epoch("2028-03-10T00:00:00Z"))), "2028-02-29T03:00:00Z")

    def test_the_next_firing_is_strictly_after_now(self):
        self.assertEqual(utc(next_firing("0 3 * * *", epoch("2026-11-24T03:00:00Z"))), "2026-11-25T03:00:00Z")
        self.assertEqual(utc(next_firing("0 3 * * *", epoch("2026-11-24T02:59:59Z"))), "2026-11-24T03:00:00Z")


class Croniter(unittest.TestCase):
    """What this module relies on in croniter, in both Debian's 1.3.5 (bookworm) and 2.0.7 (trixie)."""

    def test_the_version_is_one_debian_ships(self):
        self.assertIn(croniter_version(), ("1.3.5", "2.0.7"))

    def test_epoch_seconds_are_read_and_returned_in_utc(self):
        self.assertEqual(croniter.croniter("0 3 * * *", epoch("2026-11-24T12:00:00Z")).get_prev(float), epoch("2026-11-24T03:00:00Z"))
        self.assertEqual(croniter.croniter("0 3 * * *", epoch("2026-11-24T12:00:00Z")).get_next(float), epoch("2026-11-25T03:00:00Z"))

    def test_get_prev_is_strictly_before_its_start(self):
        self.assertEqual(croniter.croniter("0 3 * * *", epoch("2026-11-24T03:00:00Z")).get_prev(float), epoch("2026-11-23T03:00:00Z"))

    def test_get_prev_into_a_leap_february_starts_at_the_28th_in_1_3_5_only(self):
        # What last_firing works around (it then asks get_next, which finds the 29th in both).
        got = utc(croniter.croniter("0 3 * 2 *", epoch("2028-03-10T00:00:00Z")).get_prev(float))
        self.assertEqual(got, "2028-02-28T03:00:00Z" if croniter_version() == "1.3.5" else "2028-02-29T03:00:00Z")
        self.assertEqual(utc(croniter.croniter("0 3 * 2 *", epoch("2028-02-28T12:00:00Z")).get_next(float)), "2028-02-29T03:00:00Z")

    def test_a_day_that_never_occurs_raises_bad_date_even_with_a_weekday(self):
        for schedule in ("0 3 31 2 *", "0 3 31 2 1"):
            with self.subTest(schedule), self.assertRaises(croniter.CroniterBadDateError):
                croniter.croniter(schedule, epoch("2026-11-24T00:00:00Z")).get_next(float)

    def test_out_of_range_values_raise_bad_cron(self):
        with self.assertRaises(croniter.CroniterBadCronError):
            croniter.croniter("0 24 * * *", 0)


class Overdue(unittest.TestCase):
    GRACE = 6 * 3600

    def test_a_backup_that_ended_after_the_expected_firing_is_not_overdue(self):
        self.assertIsNone(overdue("0 3 * * *", epoch("2026-11-24T03:40:00Z"), epoch("2026-11-24T12:00:00Z"), self.GRACE))
        # Within the grace after 03:00 the backup of the 24th may still be running: the 23rd's is enough.
        self.assertIsNone(overdue("0 3 * * *", epoch("2026-11-23T03:40:00Z"), epoch("2026-11-24T08:59:59Z"), self.GRACE))

    def test_overdue_once_the_grace_after_a_firing_passes_without_a_backup(self):
        self.assertEqual(overdue("0 3 * * *", epoch("2026-11-23T03:40:00Z"), epoch("2026-11-24T09:00:00Z"), self.GRACE),
                         "the last full backup (ended 2026-11-23T03:40:00Z) is older than the schedule '0 3 * * *' allows: "
                         "it fired at 2026-11-24T03:00:00Z and no full backup has ended since, 360 minutes allowed for one")

    def test_a_backup_taken_by_hand_before_the_firing_does_not_count_for_it(self):
        self.assertIsNotNone(overdue("0 3 * * 0", epoch("2026-11-22T02:00:00Z"), epoch("2026-11-25T12:00:00Z"), self.GRACE))

    def test_weeks_without_a_backup_on_a_weekly_schedule(self):
        message = overdue("0 3 * * 0", epoch("2026-11-01T03:30:00Z"), epoch("2026-11-25T12:00:00Z"), self.GRACE)
        self.assertIn("fired at 2026-11-22T03:00:00Z", message)

    def test_a_repository_without_a_full_backup_is_overdue(self):
        self.assertEqual(overdue("0 3 * * *", None, epoch("2026-11-24T12:00:00Z"), self.GRACE),
                         "the last full backup (none in the repository) is older than the schedule '0 3 * * *' allows: "
                         "it fired at 2026-11-24T03:00:00Z and no full backup has ended since, 360 minutes allowed for one")

    def test_or_semantics_count_for_overdue_too(self):
        # 2026-11-29 is a Sunday: '0 3 1,15 * 0' fired then, though it is neither the 1st nor the 15th.
        message = overdue("0 3 1,15 * 0", epoch("2026-11-15T03:30:00Z"), epoch("2026-11-30T12:00:00Z"), self.GRACE)
        self.assertIn("fired at 2026-11-29T03:00:00Z", message)


if __name__ == "__main__":
    unittest.main()
