"""backup_agent: the last full backup read from `pgbackrest info`, and what backup-status says of the schedule."""
import calendar
import time
import unittest

import pod_path  # noqa: F401
from postgres_pod.backup_agent import FULL_BACKUP_TIMEOUT, last_full, schedule_status


def epoch(text: str) -> int:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def backup(kind: str, stop: str) -> dict:
    return {"type": kind, "timestamp": {"stop": epoch(stop)}}


class LastFull(unittest.TestCase):
    def test_the_newest_full_backup_counts_not_a_newer_incremental(self):
        info = {"backup": [backup("full", "2026-11-22T03:30:00Z"), backup("full", "2026-11-23T03:30:00Z"),
                           backup("incr", "2026-11-24T03:30:00Z"), backup("diff", "2026-11-24T04:30:00Z")]}
        self.assertEqual(last_full(info), epoch("2026-11-23T03:30:00Z"))

    def test_none_without_a_full_backup(self):
        self.assertIsNone(last_full({}))
        self.assertIsNone(last_full({"backup": [backup("incr", "2026-11-24T03:30:00Z")]}))


class ScheduleStatus(unittest.TestCase):
    def test_a_full_backup_since_the_expected_firing(self):
        self.assertEqual(schedule_status("0 3 * * *", epoch("2026-11-24T03:40:00Z"), epoch("2026-11-24T12:00:00Z")), {
            "schedule": "0 3 * * *", "last_full_backup": "2026-11-24T03:40:00Z", "last_firing": "2026-11-24T03:00:00Z",
            "expected_latest_firing": "2026-11-24T03:00:00Z", "next_firing": "2026-11-25T03:00:00Z", "overdue": None,
        })

    def test_within_the_backup_timeout_of_a_firing_the_previous_one_is_expected(self):
        s = schedule_status("0 3 * * *", epoch("2026-11-23T03:40:00Z"), epoch("2026-11-24T05:00:00Z"))
        self.assertEqual((s["last_firing"], s["expected_latest_firing"], s["overdue"]),
                         ("2026-11-24T03:00:00Z", "2026-11-23T03:00:00Z", None))

    def test_overdue_names_the_schedule_the_last_full_backup_and_the_expected_firing(self):
        self.assertEqual(FULL_BACKUP_TIMEOUT, 6 * 3600)
        s = schedule_status("0 3 1,15 * 0", epoch("2026-11-15T03:30:00Z"), epoch("2026-11-30T12:00:00Z"))
        self.assertEqual(s["expected_latest_firing"], "2026-11-29T03:00:00Z")
        self.assertEqual(s["overdue"], "the last full backup (ended 2026-11-15T03:30:00Z) is older than the schedule "
                                       "'0 3 1,15 * 0' allows: it fired at 2026-11-29T03:00:00Z and no full backup has "
                                       "ended since, 360 minutes allowed for one")

    def test_an_empty_repository_is_overdue(self):
        s = schedule_status("0 3 * * *", None, epoch("2026-11-24T12:00:00Z"))
        self.assertIsNone(s["last_full_backup"])
        self.assertTrue(s["overdue"].startswith("the last full backup (none in the repository) is older than"), s["overdue"])


if __name__ == "__main__":
    unittest.main()


class Stop(BaseException):
    """Ends the agent's loop at its first sleep."""


class AgentLoop(unittest.TestCase):
    """One loop of the backup agent on a leader, with Patroni, pgBackRest, the pod API and the clock faked."""

    NOW = epoch("2026-11-24T12:00:00Z")

    def run_agent(self, backups: list, backup_status: int) -> tuple[list, list]:
        """The Warning events (reason, message) the agent records, and the pgBackRest commands it runs."""
        import json
        from unittest import mock
        from postgres_pod import backup_agent
        from postgres_pod.settings import load
        from pod_path import BACKUP_ENV, BASE_ENV

        s = load({**BASE_ENV, **BACKUP_ENV, "BACKUP_SCHEDULE": "0 3 * * *", "RUN_DIR": "/nonexistent"})
        events, commands = [], []

        def pgbackrest_run(b, command, *args, timeout):
            commands.append(command)
            if command == "info":
                return 0, json.dumps([{"name": b.stanza, "backup": backups}]), ""
            if command == "backup":
                return backup_status, "", "ERROR: [039]: the store refused the write"
            return 0, "", ""

        clock = mock.Mock(time=mock.Mock(return_value=self.NOW), sleep=mock.Mock(side_effect=Stop))
        archiver = {"last_failed_time": None, "last_archived_time": self.NOW, "last_archived_wal": "000000010000000000000007"}
        with mock.patch.object(backup_agent, "time", clock), \
                mock.patch.object(backup_agent.patroni_api, "get", return_value={"role": "master", "state": "running"}), \
                mock.patch.object(backup_agent.pgbackrest, "run", side_effect=pgbackrest_run), \
                mock.patch.object(backup_agent, "archiver", return_value=archiver), \
                mock.patch.object(backup_agent, "report", side_effect=lambda s, a, event=None: event and events.append(event)), \
                mock.patch.object(backup_agent, "log"), self.assertRaises(Stop):
            backup_agent.backup_agent(s)
        return events, commands

    def test_a_failing_scheduled_backup_leaves_the_last_full_backup_overdue(self):
        events, commands = self.run_agent([backup("full", "2026-11-21T03:30:00Z")], backup_status=1)
        self.assertEqual(commands, ["stanza-create", "info", "backup"])
        self.assertEqual([reason for reason, _ in events], ["BackupFailed", "FullBackupOverdue"])
        self.assertEqual(events[1][1], "the last full backup (ended 2026-11-21T03:30:00Z) is older than the schedule '0 3 * * *' "
                                       "allows: it fired at 2026-11-24T03:00:00Z and no full backup has ended since, 360 minutes "
                                       "allowed for one")

    def test_a_full_backup_after_the_latest_firing_is_not_overdue(self):
        events, commands = self.run_agent([backup("full", "2026-11-24T03:40:00Z"), backup("incr", "2026-11-24T09:00:00Z")], backup_status=0)
        self.assertEqual((events, commands), ([], ["stanza-create", "info"]))

    def test_an_incremental_backup_does_not_stand_in_for_the_scheduled_full_one(self):
        events, commands = self.run_agent([backup("full", "2026-11-23T03:40:00Z"), backup("incr", "2026-11-24T09:00:00Z")], backup_status=0)
        self.assertEqual((events, commands), ([], ["stanza-create", "info", "backup"]))
