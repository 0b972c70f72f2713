"""patroni_api.differences: the PATCH body that makes the DCS settings equal the pod's."""
import unittest

from pod_path import BASE_ENV
from postgres_pod.patroni_api import differences
from postgres_pod.patroni_config import dynamic_config
from postgres_pod.settings import load


class Differences(unittest.TestCase):
    def test_nothing_when_equal(self):
        desired = dynamic_config(load(BASE_ENV))
        self.assertIsNone(differences(desired, desired))

    def test_only_the_changed_leaves_with_their_parents(self):
        desired = {"ttl": 7, "loop_wait": 1, "postgresql": {"use_slots": True, "parameters": {"max_slot_wal_keep_size": "1GB", "wal_level": "replica"}}}
        actual = {"ttl": 30, "loop_wait": 1, "postgresql": {"use_slots": True, "parameters": {"max_slot_wal_keep_size": "512MB", "wal_level": "replica"}}}
        self.assertEqual(differences(desired, actual), {"ttl": 7, "postgresql": {"parameters": {"max_slot_wal_keep_size": "1GB"}}})

    def test_values_compare_as_text(self):
        self.assertIsNone(differences({"max_wal_senders": 10, "synchronous_mode": True}, {"max_wal_senders": "10", "synchronous_mode": True}))
        self.assertEqual(differences({"synchronous_mode": False}, {"synchronous_mode": "false"}), {"synchronous_mode": False})

    def test_missing_keys_and_a_section_that_is_not_an_object(self):
        self.assertEqual(differences({"failsafe_mode": True, "postgresql": {"use_pg_rewind": True}}, {"postgresql": None}),
                         {"failsafe_mode": True, "postgresql": {"use_pg_rewind": True}})
        self.assertEqual(differences({"ttl": 7}, None), {"ttl": 7})

    def test_what_only_the_dcs_has_is_left_alone(self):
        self.assertIsNone(differences({"ttl": 7}, {"ttl": 7, "postgresql": {"parameters": {"work_mem": "64MB"}}}))

    def test_an_empty_object_is_nothing_to_patch(self):
        self.assertIsNone(differences({}, {"ttl": 7}))
        self.assertIsNone(differences({"postgresql": {}}, {}))


if __name__ == "__main__":
    unittest.main()
