"""cluster_settings: the DCS settings the pod wants, and the PATCH body that makes a cluster's equal to them."""
import unittest

from pod_path import BASE_ENV
from postgres_pod.cluster_settings import differences, dynamic_config
from postgres_pod.patroni_config import patroni_config
from postgres_pod.settings import load


class DynamicConfig(unittest.TestCase):
    def test_defaults(self):
        self.assertEqual(dynamic_config(load(BASE_ENV)), {
            "ttl": 7, "loop_wait": 1, "retry_timeout": 3, "maximum_lag_on_failover": 1048576, "synchronous_mode": True,
            "synchronous_mode_strict": False, "synchronous_node_count": 1, "failsafe_mode": True,
            "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": {
                "wal_level": "replica", "hot_standby": "on", "max_wal_senders": 10, "max_replication_slots": 10, "wal_keep_size": "128MB",
                "max_slot_wal_keep_size": "1GB", "hot_standby_feedback": "on", "password_encryption": "scram-sha-256"}}})

    def test_synchronous_modes(self):
        modes = {m: dynamic_config(load({**BASE_ENV, "SYNCHRONOUS_MODE": m})) for m in ("on", "off", "strict")}
        self.assertEqual({m: (d["synchronous_mode"], d["synchronous_mode_strict"]) for m, d in modes.items()},
                         {"on": (True, False), "off": (False, False), "strict": (True, True)})

    def test_postgres_parameters_add_to_and_override_the_defaults(self):
        p = dynamic_config(load({**BASE_ENV, "POSTGRES_PARAMETERS": '{"work_mem": "8MB", "wal_keep_size": "1GB"}'}))["postgresql"]["parameters"]
        self.assertEqual((p["work_mem"], p["wal_keep_size"], p["wal_level"]), ("8MB", "1GB", "replica"))

    def test_the_bootstrap_carries_the_same_settings(self):
        s = load({**BASE_ENV, "TTL": "30", "LOOP_WAIT": "10", "RETRY_TIMEOUT": "10"})
        self.assertEqual(patroni_config(s)["bootstrap"]["dcs"], dynamic_config(s))
        self.assertEqual([dynamic_config(s)[k] for k in ("ttl", "loop_wait", "retry_timeout")], [30, 10, 10])


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
