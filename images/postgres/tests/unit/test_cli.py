"""cli: every command is dispatched and documented, the shell settings, the exit statuses."""
import contextlib
import io
import os
import re
import unittest
from unittest import mock

from pod_path import BASE_ENV
from postgres_pod import cli
from postgres_pod.settings import load


class Commands(unittest.TestCase):
    def test_usage_lists_exactly_the_commands(self):
        self.assertEqual(sorted(re.findall(r"^    pod\.py ([a-z-]+)", cli.USAGE, re.MULTILINE)), sorted(cli.COMMANDS))

    def test_the_commands_the_image_and_the_statefulset_run(self):
        # entrypoint.sh, post-bootstrap.sh, Patroni's restore bootstrap, the preStop hook, the program's backupStatus output.
        for name in ("config", "env", "check-dcs", "apply-dynamic-config", "wait-leader", "pgbackrest-conf", "backup-agent", "sync-guard",
                     "stanza-create", "restore", "pre-stop", "backup-status", "full-backup", "check-archive", "dynamic-config",
                     "check-bootstrap"):
            self.assertIn(name, cli.COMMANDS)

    def test_shell_exports(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            cli.shell_exports(load({**BASE_ENV, "APP_USER": "it's", "RUN_DIR": "/run/pg"}), [])
        self.assertEqual(out.getvalue(), "export APP_USER='it'\"'\"'s'\nexport APP_DATABASE=stateful-flask-db\nexport REPLICATION_USER=replicator\n"
                                         "export PGPORT=5432\nexport PG_BIN=/usr/lib/postgresql/15/bin\nexport RUN_DIR=/run/pg\n")


class ExitStatus(unittest.TestCase):
    def run_main(self, argv: list, env: dict) -> tuple:
        err, out = io.StringIO(), io.StringIO()
        with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            status = cli.main(argv)
        return status, out.getvalue(), err.getvalue()

    def test_no_command_prints_the_usage(self):
        self.assertEqual(self.run_main(["pod.py"], BASE_ENV), (2, "", cli.USAGE))

    def test_an_unknown_command(self):
        status, _, err = self.run_main(["pod.py", "backup"], BASE_ENV)
        self.assertEqual(status, 2)
        self.assertTrue(err.startswith("unknown command 'backup'\nHelpers of the Postgres pod's entrypoint"), err)

    def test_a_bad_environment_is_fatal_before_any_command(self):
        status, out, err = self.run_main(["pod.py", "config"], {**BASE_ENV, "TTL": "6"})
        self.assertEqual((status, out), (1, ""))
        self.assertRegex(err, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ pod\.py postgres-1: FATAL: TTL=6, LOOP_WAIT=1, RETRY_TIMEOUT=3: "
                              r"LOOP_WAIT \+ 2 \* RETRY_TIMEOUT must not exceed TTL\n$")

    def test_backup_commands_without_backups(self):
        for command in ("backup-status", "full-backup"):
            status, _, err = self.run_main(["pod.py", command], BASE_ENV)
            self.assertEqual(status, 1)
            self.assertIn("FATAL: no backups configured (BACKUP_S3_BUCKET is unset): this database has no backup\n", err)
        self.assertEqual(self.run_main(["pod.py", "backup-agent"], BASE_ENV), (0, "", ""))
        self.assertEqual(self.run_main(["pod.py", "sync-guard"], {**BASE_ENV, "SYNCHRONOUS_MODE": "off"}), (0, "", ""))


if __name__ == "__main__":
    unittest.main()
