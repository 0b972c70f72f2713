"""archive_check: segment names, the backup a restore starts from, holes in the archive, damaged files."""
import unittest

import pod_path  # noqa: F401
from postgres_pod.archive_check import archived_positions, choose_backup, damaged_files, first_hole, wal_index
from postgres_pod.errors import ConfigError

CHECKSUM = "-0123456789abcdef0123456789abcdef01234567.lz4"


def listing(*names: str) -> list[str]:
    """repo-ls --recurse names: each segment under its timeline-and-log directory."""
    return [f"15-1/{n[:16]}/{n}{CHECKSUM}" if len(n) == 24 else f"15-1/{n}" for n in names]


class WalIndex(unittest.TestCase):
    def test_timeline_and_position(self):
        self.assertEqual(wal_index("000000010000000000000010"), (1, 0x10))
        self.assertEqual(wal_index("0000000A00000002000000FF"), (10, 2 * 256 + 255))

    def test_a_repository_file_name_starts_with_the_segment(self):
        self.assertEqual(wal_index("000000020000000100000003" + CHECKSUM), (2, 256 + 3))

    def test_anything_else_is_refused(self):
        with self.assertRaises(ValueError):
            wal_index("00000002.history")


class ChooseBackup(unittest.TestCase):
    BACKUPS = [{"label": "A", "timestamp": {"stop": 1700000000}}, {"label": "B", "timestamp": {"stop": 1700003600}}]

    def test_the_newest_without_a_target(self):
        self.assertEqual(choose_backup(self.BACKUPS, "/prod", None)["label"], "B")

    def test_the_newest_that_ended_before_the_target(self):
        # 1700003600 is 2023-11-14T23:13:20Z.
        self.assertEqual(choose_backup(self.BACKUPS, "/prod", "2023-11-14T23:13:19Z")["label"], "A")
        self.assertEqual(choose_backup(self.BACKUPS, "/prod", "2023-11-15T00:13:21+01:00")["label"], "B")

    def test_a_target_before_every_backup(self):
        with self.assertRaises(ConfigError) as e:
            choose_backup(self.BACKUPS, "/prod", "2023-11-14T22:13:20Z")
        self.assertEqual(str(e.exception), "RESTORE_TARGET_TIME=2023-11-14T22:13:20Z is before the oldest backup in /prod (it ended at 2023-11-14T22:13:20Z)")


class Holes(unittest.TestCase):
    def test_positions_and_their_timelines_without_history_files(self):
        have = archived_positions(listing("000000010000000000000010", "000000010000000000000011", "000000020000000000000011",
                                          "00000002.history", "000000010000000000000011.partial"))
        self.assertEqual(have, {0x10: {1}, 0x11: {1, 2}})

    def test_no_hole(self):
        have = archived_positions(listing("000000010000000000000010", "000000010000000000000011", "000000020000000000000012"))
        self.assertIsNone(first_hole(have, "000000010000000000000010"))

    def test_the_first_missing_segment_named_on_its_predecessors_timeline(self):
        have = archived_positions(listing("000000010000000000000010", "000000020000000000000011", "000000020000000000000014",
                                          "000000020000000000000016"))
        self.assertEqual(first_hole(have, "000000010000000000000010"), ("000000020000000000000012", 2, 7))

    def test_a_hole_right_at_the_backups_start_takes_the_backups_timeline(self):
        have = archived_positions(listing("000000030000000000000012"))
        self.assertEqual(first_hole(have, "000000030000000000000010"), ("000000030000000000000010", 1, 3))

    def test_segments_before_the_backup_do_not_matter(self):
        have = archived_positions(listing("000000010000000000000001", "000000010000000000000010"))
        self.assertIsNone(first_hole(have, "000000010000000000000010"))

    def test_the_backups_first_segment_must_be_there(self):
        self.assertEqual(first_hole({}, "000000010000000000000010"), ("000000010000000000000010", 0, 1))


class Damaged(unittest.TestCase):
    def test_segments_by_name_other_files_by_path(self):
        out = ("P00 INFO: invalid result archive/postgres/15-1/0000000100000000/000000010000000000000011" + CHECKSUM + ": checksum invalid\n"
               "P00 INFO: invalid result backup/postgres/20261124-140100F/pg_data/base/1/1259.lz4: size mismatch  \n"
               "P00 INFO: status: error\n")
        self.assertEqual(damaged_files(out), ["WAL segment 000000010000000000000011 (checksum invalid)",
                                              "backup/postgres/20261124-140100F/pg_data/base/1/1259.lz4 (size mismatch)"])

    def test_nothing_invalid(self):
        self.assertEqual(damaged_files("P00 INFO: stanza: postgres\nstatus: ok\n"), [])


if __name__ == "__main__":
    unittest.main()
