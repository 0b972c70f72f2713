"""sync_guard: reading synchronous_standby_names, and which named standbys can never answer."""
import unittest

import pod_path  # noqa: F401
from postgres_pod.sync_guard import standby_names, sync_stale


class StandbyNames(unittest.TestCase):
    def test_the_forms_patroni_and_postgresql_write(self):
        self.assertEqual(standby_names('"postgres-1"'), ["postgres-1"])
        self.assertEqual(standby_names("postgres-1, postgres-2"), ["postgres-1", "postgres-2"])
        self.assertEqual(standby_names('2 ("postgres-1","postgres-2")'), ["postgres-1", "postgres-2"])
        self.assertEqual(standby_names("FIRST 1 (postgres-1, postgres-2)"), ["postgres-1", "postgres-2"])
        self.assertEqual(standby_names("any 1 (a)"), ["a"])

    def test_a_doubled_quote_inside_quotes(self):
        self.assertEqual(standby_names('"a""b"'), ['a"b'])

    def test_a_quoted_comma_splits_unlike_in_postgresql(self):
        # A plain split on commas; member names are pod names, which hold no comma.
        self.assertEqual(standby_names('"a,b"'), ['"a', 'b"'])

    def test_empty_and_star(self):
        self.assertEqual(standby_names(""), [])
        self.assertEqual(standby_names("  "), [])
        self.assertEqual(standby_names("*"), ["*"])
        self.assertEqual(standby_names('""'), [])


class SyncStale(unittest.TestCase):
    def test_a_named_standby_that_is_gone_and_not_in_the_dcs(self):
        self.assertEqual(sync_stale(["postgres-2"], streaming=set(), dcs_sync=[]), ["postgres-2"])

    def test_a_streaming_standby_is_not_stale(self):
        self.assertEqual(sync_stale(["postgres-1"], streaming={"postgres-1"}, dcs_sync=[]), [])

    def test_what_the_dcs_records_is_patronis_to_take_out(self):
        self.assertEqual(sync_stale(["postgres-1"], streaming=set(), dcs_sync=["postgres-1"]), [])

    def test_several_sorted(self):
        self.assertEqual(sync_stale(["postgres-3", "postgres-1", "postgres-2"], streaming={"postgres-2"}, dcs_sync=[]), ["postgres-1", "postgres-3"])

    def test_strict_mode_star_is_the_setting_not_a_member(self):
        self.assertEqual(sync_stale(["*"], streaming=set(), dcs_sync=[]), [])

    def test_nothing_named(self):
        self.assertEqual(sync_stale([], streaming=set(), dcs_sync=[]), [])


if __name__ == "__main__":
    unittest.main()
