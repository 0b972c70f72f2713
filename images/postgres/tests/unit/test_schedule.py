"""schedule: the cron syntax the pod accepts and when a full backup is due, as they are (UTC)."""
import calendar
import time
import unittest

import pod_path  # noqa: F401
from postgres_pod.schedule import cron_matches, last_scheduled, valid


def epoch(text: str) -> int:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def utc(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def matches(schedule: str, at: str) -> bool:
    return cron_matches(schedule.split(), time.gmtime(epoch(at)))


class Syntax(unittest.TestCase):
    def test_five_fields_of_numbers_ranges_steps_and_lists(self):
        for schedule in ("0 3 * * *", "*/15 1-5 * * 0,7", "0 3 1-7/2 1,6 *", "30 2 * * 1-5"):
            with self.subTest(schedule):
                self.assertTrue(valid(schedule))

    def test_anything_else_is_refused(self):
        for schedule in ("0 3 * *", "0 3 * * * *", "@daily", "0 3 * * mon", "0 3 * jan *", "0 3 ? * *", "", "0,3 * * * -1"):
            with self.subTest(schedule):
                self.assertFalse(valid(schedule))


class Matching(unittest.TestCase):
    def test_minute_and_hour(self):
        self.assertTrue(matches("0 3 * * *", "2026-11-24T03:00:00Z"))
        self.assertFalse(matches("0 3 * * *", "2026-11-24T03:01:00Z"))
        self.assertFalse(matches("0 3 * * *", "2026-11-24T15:00:00Z"))

    def test_steps_count_from_the_start_of_the_range(self):
        self.assertEqual([m for m in range(60) if matches("5-40/10 * * * *", f"2026-11-24T03:{m:02d}:00Z")], [5, 15, 25, 35])
        self.assertEqual([m for m in range(60) if matches("*/15 * * * *", f"2026-11-24T03:{m:02d}:00Z")], [0, 15, 30, 45])

    def test_weekday_0_and_7_are_sunday(self):
        # 2026-11-29 is a Sunday, 2026-11-30 a Monday.
        self.assertTrue(matches("0 3 * * 0", "2026-11-29T03:00:00Z"))
        self.assertTrue(matches("0 3 * * 7", "2026-11-29T03:00:00Z"))
        self.assertTrue(matches("0 3 * * 1", "2026-11-30T03:00:00Z"))
        self.assertFalse(matches("0 3 * * 0", "2026-11-30T03:00:00Z"))

    def test_a_day_of_the_month_and_a_weekday_must_both_match(self):
        # Cron itself would fire on either; this schedule fires on the 1st only when it is a Monday.
        self.assertFalse(matches("0 3 1 * 1", "2026-11-30T03:00:00Z"))  # a Monday, not the 1st
        self.assertFalse(matches("0 3 1 * 1", "2026-12-01T03:00:00Z"))  # the 1st, a Tuesday
        self.assertTrue(matches("0 3 1 * 1", "2027-02-01T03:00:00Z"))   # the 1st and a Monday

    def test_month(self):
        self.assertTrue(matches("0 0 1 1,7 *", "2027-07-01T00:00:00Z"))
        self.assertFalse(matches("0 0 1 1,7 *", "2027-06-01T00:00:00Z"))


class LastScheduled(unittest.TestCase):
    def test_the_latest_firing_at_or_before_now(self):
        self.assertEqual(utc(last_scheduled("0 3 * * *", epoch("2026-11-24T14:01:30Z"))), "2026-11-24T03:00:00Z")
        self.assertEqual(utc(last_scheduled("0 3 * * *", epoch("2026-11-24T03:00:59Z"))), "2026-11-24T03:00:00Z")
        self.assertEqual(utc(last_scheduled("0 3 * * *", epoch("2026-11-24T02:59:59Z"))), "2026-11-23T03:00:00Z")

    def test_a_weekly_schedule_looks_back_across_days(self):
        # Sunday 03:00; from Wednesday 2026-11-25.
        self.assertEqual(utc(last_scheduled("0 3 * * 0", epoch("2026-11-25T12:00:00Z"))), "2026-11-22T03:00:00Z")

    def test_every_fifteen_minutes(self):
        self.assertEqual(utc(last_scheduled("*/15 * * * *", epoch("2026-11-24T14:44:59Z"))), "2026-11-24T14:30:00Z")

    def test_none_when_nothing_fires_within_31_days(self):
        self.assertIsNone(last_scheduled("0 3 30 2 *", epoch("2026-11-24T14:01:00Z")))
        # A yearly date further back than 31 days is not found either.
        self.assertIsNone(last_scheduled("0 3 1 1 *", epoch("2026-11-24T14:01:00Z")))

    def test_a_monthly_schedule_within_the_window(self):
        self.assertEqual(utc(last_scheduled("0 3 1 * *", epoch("2026-12-31T23:59:00Z"))), "2026-12-01T03:00:00Z")


if __name__ == "__main__":
    unittest.main()
