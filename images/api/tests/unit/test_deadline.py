"""deadline: the bound on waits for PostgreSQL, and the libpq parameters that go with it."""
import os
import socket
import sys
import time
import unittest

import psycopg2
from psycopg2 import extensions

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from tasks_api import database, deadline, settings  # noqa: E402


class Waiting:
    """What psycopg2 hands the wait callback: poll() says what libpq waits for, fileno() where."""

    def __init__(self, sock: socket.socket, states: list):
        self.sock, self.states = sock, states

    def poll(self):
        return self.states.pop(0) if self.states else extensions.POLL_READ

    def fileno(self):
        return self.sock.fileno()


class Deadline(unittest.TestCase):
    def setUp(self):
        self.ours, self.theirs = socket.socketpair()
        self.addCleanup(self.ours.close)
        self.addCleanup(self.theirs.close)

    def test_a_silent_server_ends_at_the_deadline_with_an_operational_error_naming_the_bound(self):
        t = time.monotonic()
        with deadline.bounded(0.3, "DB_QUERY_TIMEOUT"):
            with self.assertRaises(deadline.DeadlineExceeded) as e:
                deadline.wait(Waiting(self.ours, []))
        self.assertTrue(0.25 <= time.monotonic() - t < 1.0, time.monotonic() - t)
        self.assertIsInstance(e.exception, psycopg2.OperationalError)
        self.assertEqual(str(e.exception), "no answer from the database within DB_QUERY_TIMEOUT (0.3 s)")

    def test_an_answer_before_the_deadline_is_waited_for(self):
        self.theirs.send(b"x")
        with deadline.bounded(5, "DB_QUERY_TIMEOUT"):
            deadline.wait(Waiting(self.ours, [extensions.POLL_READ, extensions.POLL_OK]))

    def test_the_earlier_of_nested_bounds_applies_and_the_outer_one_comes_back(self):
        with deadline.bounded(0.3, "DB_QUERY_TIMEOUT"):
            with deadline.bounded(60, "DB_CONNECT_TIMEOUT"):
                with self.assertRaisesRegex(deadline.DeadlineExceeded, r"within DB_QUERY_TIMEOUT \(0\.3 s\)$"):
                    deadline.wait(Waiting(self.ours, []))
        with deadline.bounded(60, "DB_QUERY_TIMEOUT"):
            with deadline.bounded(0.1, "DB_CONNECT_TIMEOUT"):
                with self.assertRaisesRegex(deadline.DeadlineExceeded, r"within DB_CONNECT_TIMEOUT \(0\.1 s\)$"):
                    deadline.wait(Waiting(self.ours, []))
            self.assertEqual(deadline._local.deadline[1], "DB_QUERY_TIMEOUT (60 s)")
        self.assertIsNone(deadline._local.deadline)


class Parameters(unittest.TestCase):
    def test_keepalives_user_timeout_and_server_timeouts(self):
        s = settings.load({"DATABASE_URL": "postgresql://u:p@db/t"})
        self.assertEqual(
            database.transport_parameters(s),
            {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3, "tcp_user_timeout": 5000},
        )
        self.assertEqual(
            database.session_options(s),
            "-c statement_timeout=2000 -c lock_timeout=1000 -c idle_in_transaction_session_timeout=10000",
        )


class Checkout(unittest.TestCase):
    def test_an_idle_connection_with_something_to_read_or_closed_is_dead(self):
        ours, theirs = socket.socketpair()
        self.addCleanup(ours.close)

        class Conn:
            closed = 0

            def fileno(self):
                return ours.fileno()

        self.assertFalse(database.is_dead(Conn()))
        theirs.close()  # what a server's FIN looks like
        self.assertTrue(database.is_dead(Conn()))
        gone = Conn()
        gone.closed = 2
        self.assertTrue(database.is_dead(gone))


if __name__ == "__main__":
    unittest.main()
