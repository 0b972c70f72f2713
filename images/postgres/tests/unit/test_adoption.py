"""adoption: what an adopted standby of the entrypoint before Patroni changes in Patroni's configuration, and nothing else."""
import unittest

from pod_path import BASE_ENV
from postgres_pod import adoption
from postgres_pod.settings import load


class AdoptingStandby(unittest.TestCase):
    def test_connects_as_the_old_bootstrap_superuser_over_the_socket(self):
        s = load({**BASE_ENV, "ADOPTING_STANDBY": "true", "APP_USER": "tasks", "APP_PASSWORD": "secret"})
        self.assertEqual(adoption.standby_superuser(s), {"username": "tasks", "password": "secret"})
        self.assertEqual(adoption.standby_hba(s), ['local all "tasks" scram-sha-256'])

    def test_any_other_member_is_unchanged(self):
        s = load(BASE_ENV)
        self.assertIsNone(adoption.standby_superuser(s))
        self.assertEqual(adoption.standby_hba(s), [])


if __name__ == "__main__":
    unittest.main()
