"""settings.load: the environment read once, each bad value refused with its name, the value and what is allowed."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from tasks_api import settings  # noqa: E402

URL = "postgresql://u:p@db:5432/tasks"


class Load(unittest.TestCase):
    def test_defaults(self):
        s = settings.load({"DATABASE_URL": URL})
        self.assertEqual((s.pool_size, s.connect_timeout, s.query_timeout), (4, 5, 3.0))
        self.assertEqual((s.statement_timeout_ms, s.lock_timeout_ms), (2000, 1000))

    def test_pool_size_follows_gunicorn_threads_unless_set(self):
        self.assertEqual(settings.load({"DATABASE_URL": URL, "GUNICORN_THREADS": "8"}).pool_size, 8)
        self.assertEqual(settings.load({"DATABASE_URL": URL, "GUNICORN_THREADS": "8", "DB_POOL_SIZE": "3"}).pool_size, 3)

    def test_server_timeouts_follow_the_query_timeout_with_floors(self):
        s = settings.load({"DATABASE_URL": URL, "DB_QUERY_TIMEOUT": "10"})
        self.assertEqual((s.statement_timeout_ms, s.lock_timeout_ms), (9000, 4500))
        s = settings.load({"DATABASE_URL": URL, "DB_QUERY_TIMEOUT": "1"})
        self.assertEqual((s.statement_timeout_ms, s.lock_timeout_ms), (500, 250))
        self.assertEqual(settings.load({"DATABASE_URL": URL, "DB_QUERY_TIMEOUT": "2.5"}).query_timeout, 2.5)

    def test_bad_values_name_the_variable_the_value_and_the_range(self):
        cases = {
            ("DB_QUERY_TIMEOUT", "0"): "DB_QUERY_TIMEOUT is '0'; allowed: a number from 1 to 60",
            ("DB_QUERY_TIMEOUT", "3s"): "DB_QUERY_TIMEOUT is '3s'; allowed: a number from 1 to 60",
            ("DB_QUERY_TIMEOUT", "nan"): "DB_QUERY_TIMEOUT is 'nan'; allowed: a number from 1 to 60",
            ("DB_POOL_SIZE", "0"): "DB_POOL_SIZE is '0'; allowed: an integer from 1 to 64",
            ("DB_POOL_SIZE", "2.5"): "DB_POOL_SIZE is '2.5'; allowed: an integer from 1 to 64",
            ("DB_CONNECT_TIMEOUT", "1"): "DB_CONNECT_TIMEOUT is '1'; allowed: an integer from 2 to 60",
            ("GUNICORN_THREADS", "many"): "DB_POOL_SIZE is 'many'; allowed: an integer from 1 to 64",
        }
        for (name, value), message in cases.items():
            with self.subTest(name=name, value=value):
                with self.assertRaises(RuntimeError) as e:
                    settings.load({"DATABASE_URL": URL, name: value})
                self.assertEqual(str(e.exception), message)

    def test_database_url_from_the_tutorial_variables(self):
        env = {"POSTGRES_HOST": "h", "POSTGRES_DB": "d", "POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p@ss:/w"}
        self.assertEqual(settings.load(env).database_url, "postgresql://u:p%40ss%3A%2Fw@h:5432/d")
        with self.assertRaises(RuntimeError) as e:
            settings.load({"POSTGRES_HOST": "h"})
        self.assertEqual(
            str(e.exception),
            "set DATABASE_URL, or all of POSTGRES_HOST, POSTGRES_DB, POSTGRES_USER, POSTGRES_PASSWORD "
            "(missing: POSTGRES_DB, POSTGRES_USER, POSTGRES_PASSWORD)",
        )


if __name__ == "__main__":
    unittest.main()
