"""archive_push: when a divergent copy of a segment may stay out of the archive, and when it must not."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "pod"))
import archive_push as ap  # noqa: E402

# Timeline 6 ended inside segment 0E (at 0/E000100), 7 at the start of segment 0x12, 9 (8 was abandoned) inside
# segment 0x20; the live timeline is 15.
HISTORY = ap.parse_history("""1\t0/3000000\tno recovery target specified
2\t0/5000028\tno recovery target specified

6\t0/E000100\tno recovery target specified
7\t0/12000000\tno recovery target specified
9\t0/200000A0\tno recovery target specified
""")


def verdict(name, branch=None):
    return ap.archive_conflict(name, 15, HISTORY, branch)


class Parsing(unittest.TestCase):
    def test_history_lists_each_ancestor_and_where_it_ended(self):
        self.assertEqual(HISTORY, [(1, 0x3000000), (2, 0x5000028), (6, 0xE000100), (7, 0x12000000), (9, 0x200000A0)])

    def test_lsn_round_trip(self):
        self.assertEqual(ap.parse_lsn("1/E000100"), (1 << 32) + 0xE000100)
        self.assertEqual(ap.format_lsn((1 << 32) + 0xE000100), "1/E000100")

    def test_segment_names(self):
        self.assertEqual(ap.segment("00000006000000000000000E"), (6, 14))
        self.assertEqual(ap.segment("00000006000000010000000E.partial"), (6, 256 + 14))
        self.assertIsNone(ap.segment("00000007.history"))
        self.assertIsNone(ap.segment("00000006000000000000000E.00000028.backup"))


class ArchiveConflict(unittest.TestCase):
    def test_a_segment_after_its_timeline_ended_is_skipped_with_nothing_to_check(self):
        v = verdict("00000006000000000000000F")
        self.assertEqual((v.skip, v.requires, v.truncated_only), (True, None, False))
        self.assertIn("after timeline 6 ended at 0/E000100", v.why)

    def test_the_fork_segment_needs_the_next_timelines_copy(self):
        v = verdict("00000006000000000000000E")
        self.assertEqual((v.skip, v.requires, v.truncated_only), (True, "00000007000000000000000E", False))
        self.assertIn("timeline 6 ended at 0/E000100 inside 00000006000000000000000E", v.why)

    def test_a_partial_fork_segment_is_treated_like_the_segment(self):
        v = verdict("00000006000000000000000E.partial")
        self.assertEqual((v.skip, v.requires), (True, "00000007000000000000000E"))

    def test_the_successor_is_the_next_line_of_the_history_not_tli_plus_one(self):
        self.assertEqual(verdict("000000090000000000000020").requires, "0000000F0000000000000020")

    def test_a_timeline_ending_exactly_at_a_segment_boundary(self):
        self.assertEqual(verdict("000000070000000000000012").skip, True)
        self.assertEqual(verdict("000000070000000000000012").requires, None)
        self.assertEqual(verdict("000000070000000000000011").truncated_only, True)

    def test_a_segment_inside_the_history_is_left_out_only_as_a_truncated_copy(self):
        v = verdict("00000006000000000000000D")
        self.assertEqual((v.skip, v.requires, v.truncated_only), (True, None, True))
        self.assertIn("inside timeline 6's part of the history", v.why)

    def test_the_live_timeline_and_newer_ones_fail(self):
        self.assertIn("the live one is 15", verdict("0000000F0000000000000030").why)
        self.assertFalse(verdict("0000000F0000000000000030").skip)
        self.assertFalse(verdict("000000100000000000000030").skip)

    def test_a_sibling_branch_without_its_history_fails(self):
        v = verdict("000000080000000000000015")
        self.assertFalse(v.skip)
        self.assertIn("timeline 8 is not an ancestor of the live timeline 15 and its history is unavailable", v.why)

    def test_a_sibling_branchs_own_wal_is_skipped_but_not_what_it_shares_with_the_history(self):
        # Timeline 8 branched off 7 at 0/14000040 (7 itself went on to 0/12000000 in the live history: 8 is a sibling).
        branch = ap.parse_history("1\t0/3000000\tx\n2\t0/5000028\tx\n6\t0/E000100\tx\n7\t0/14000040\tx\n")
        self.assertTrue(verdict("000000080000000000000015", branch).skip)
        self.assertFalse(verdict("000000080000000000000014", branch).skip)

    def test_history_and_backup_files_fail(self):
        self.assertFalse(verdict("00000007.history").skip)
        self.assertFalse(verdict("00000006000000000000000E.00000028.backup").skip)

    def test_segments_past_4_gb(self):
        history = ap.parse_history("6\t1/E000100\tx\n")
        self.assertTrue(ap.archive_conflict("00000006000000010000000F", 7, history).skip)
        self.assertEqual(ap.archive_conflict("00000006000000010000000E", 7, history).requires, "00000007000000010000000E")
        self.assertTrue(ap.archive_conflict("00000006000000010000000D", 7, history).truncated_only)


class FirstDifference(unittest.TestCase):
    def test_equal_prefixes(self):
        self.assertIsNone(ap.first_difference(b"a" * 100000 + b"x", b"a" * 100000 + b"y", 100000))

    def test_the_offset_of_the_first_differing_byte(self):
        self.assertEqual(ap.first_difference(b"a" * 70000 + b"x", b"a" * 70000 + b"y", 80000), 70000)

    def test_a_shorter_copy_differs_where_it_ends(self):
        self.assertEqual(ap.first_difference(b"abc", b"abcdef", 6), 3)


def wal_page(segment_start, offset, fill):
    """An 8 KB WAL page of the segment starting at `segment_start`: a header with its xlp_pageaddr, then `fill`."""
    header = (0xD110).to_bytes(2, "little") + bytes(2) + (6).to_bytes(4, "little") + (segment_start + offset).to_bytes(8, "little")
    return header + bytes([fill]) * (ap.PAGE_SIZE - len(header))


class TruncatedCopy(unittest.TestCase):
    START = 14 * ap.SEGMENT_SIZE

    def pages(self, fills):
        return b"".join(wal_page(self.START, i * ap.PAGE_SIZE, f) if f is not None else bytes(ap.PAGE_SIZE) for i, f in enumerate(fills))

    def test_an_equal_copy(self):
        self.assertTrue(ap.truncated_copy(self.pages([1, 2, 3]), self.pages([1, 2, 3]), self.START))

    def test_a_copy_whose_stream_stopped_is_truncated(self):
        # The last page half written, then zeroed pages and a recycled one (a page of another segment).
        half = wal_page(self.START, ap.PAGE_SIZE, 2)[:5000] + bytes(ap.PAGE_SIZE - 5000)
        recycled = wal_page(3 * ap.SEGMENT_SIZE, 3 * ap.PAGE_SIZE, 9)
        local = self.pages([1])[:ap.PAGE_SIZE] + half + bytes(ap.PAGE_SIZE) + recycled
        self.assertTrue(ap.truncated_copy(local, self.pages([1, 2, 3, 4]), self.START))

    def test_a_copy_with_other_wal_after_the_difference_is_not(self):
        self.assertFalse(ap.truncated_copy(self.pages([1, 7, 3]), self.pages([1, 2, 3]), self.START))
        self.assertFalse(ap.truncated_copy(self.pages([1, None, 5]), self.pages([1, 2, 3]), self.START))

    def test_a_copy_with_more_wal_than_the_archive_is_not(self):
        self.assertFalse(ap.truncated_copy(self.pages([1, 2, 3]), self.pages([1, None, None]), self.START))
        self.assertFalse(ap.truncated_copy(self.pages([1, 2, None]), self.pages([1, None, None]), self.START))

    def test_a_recycled_tail_in_the_middle_of_a_page_is_not_told_apart_from_wal(self):
        local = self.pages([1])[:ap.PAGE_SIZE] + wal_page(self.START, ap.PAGE_SIZE, 2)[:5000] + bytes([9]) * (ap.PAGE_SIZE - 5000)
        self.assertFalse(ap.truncated_copy(local, self.pages([1, 2]), self.START))

    def test_a_zero_page_is_not_a_page_of_segment_zero(self):
        self.assertFalse(ap.page_of_segment(bytes(ap.PAGE_SIZE), 0, 0))


class SettingsFromArgv(unittest.TestCase):
    ARGS = ["--config=/run/p.conf", "--stanza=postgres", "--pgdata=/data/pgdata", "--bin=/usr/lib/postgresql/15/bin",
            "--run-dir=/run", "--synchronous-mode=on"]

    def test_every_option(self):
        s = ap.Settings.from_argv(self.ARGS)
        self.assertEqual((s.config, s.stanza, s.pgdata, s.synchronous_mode, s.keep_dir), ("/run/p.conf", "postgres", "/data/pgdata", "on", "/data/diverged-wal"))

    def test_a_missing_option_is_named(self):
        with self.assertRaisesRegex(ValueError, "missing --stanza"):
            ap.Settings.from_argv([a for a in self.ARGS if not a.startswith("--stanza")])

    def test_an_unknown_option_is_named(self):
        with self.assertRaisesRegex(ValueError, "'--force=1' is not an option"):
            ap.Settings.from_argv(self.ARGS + ["--force=1"])

    def test_a_bad_synchronous_mode(self):
        with self.assertRaisesRegex(ValueError, "--synchronous-mode='maybe' is not valid; expected one of on, off, strict"):
            ap.Settings.from_argv(self.ARGS[:-1] + ["--synchronous-mode=maybe"])


if __name__ == "__main__":
    unittest.main()
