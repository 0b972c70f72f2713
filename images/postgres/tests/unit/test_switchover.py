"""switchover: which member a stopping leader hands over to."""
import unittest

import pod_path  # noqa: F401
from postgres_pod.switchover import candidates, ordinal


def member(name: str, role: str, state: str = "streaming") -> dict:
    return {"name": name, "role": role, "state": state}


class Ordinal(unittest.TestCase):
    def test_the_pods_ordinal_and_last_without_one(self):
        self.assertEqual(ordinal("postgres-12"), 12)
        self.assertEqual(ordinal("postgres"), 1 << 30)


class Candidates(unittest.TestCase):
    MEMBERS = [member("postgres-0", "leader", "running"), member("postgres-2", "replica"), member("postgres-1", "sync_standby"),
               member("postgres-3", "replica", "starting")]

    def test_synchronous_modes_hand_over_to_the_synchronous_standby_only(self):
        for mode in ("on", "strict"):
            self.assertEqual([m["name"] for m in candidates(self.MEMBERS, "postgres-0", mode)], ["postgres-1"])
        self.assertEqual(candidates([member("postgres-0", "leader", "running"), member("postgres-1", "replica")], "postgres-0", "on"), [])

    def test_asynchronous_the_running_replicas_lowest_ordinal_first(self):
        self.assertEqual([m["name"] for m in candidates(self.MEMBERS, "postgres-0", "off")], ["postgres-1", "postgres-2"])

    def test_a_stopped_or_starting_member_is_no_candidate(self):
        members = [member("postgres-0", "leader", "running"), member("postgres-1", "sync_standby", "stopped"), member("postgres-2", "replica", "running")]
        self.assertEqual(candidates(members, "postgres-0", "on"), [])
        self.assertEqual([m["name"] for m in candidates(members, "postgres-0", "off")], ["postgres-2"])


if __name__ == "__main__":
    unittest.main()
