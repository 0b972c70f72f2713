"""pgbackrest: the configuration file, the command line and the one-line error."""
import os
import stat
import tempfile
import unittest

from pod_path import BACKUP_ENV, BASE_ENV
from postgres_pod import pgbackrest
from postgres_pod.errors import ConfigError
from postgres_pod.settings import load


class ConfigFile(unittest.TestCase):
    def test_every_line(self):
        self.assertEqual(pgbackrest.config_file(load({**BASE_ENV, **BACKUP_ENV})), "\n".join([
            "[global]",
            "repo1-type=s3",
            "repo1-s3-endpoint=fra1.digitaloceanspaces.com",
            "repo1-s3-region=fra1",
            "repo1-s3-bucket=stateful-flask-dev-pgbackrest",
            "repo1-s3-uri-style=host",
            "repo1-s3-key=key",
            "repo1-s3-key-secret=key-secret",
            "repo1-path=/stateful-flask/dev",
            "repo1-cipher-type=aes-256-cbc",
            "repo1-cipher-pass=cipher-pass",
            "repo1-retention-full=7",
            "repo1-storage-port=443",
            "compress-type=lz4",
            "process-max=1",
            "io-timeout=60",
            "log-level-console=info",
            "log-level-file=off",
            "lock-path=/var/run/postgresql/pgbackrest-lock",
            "start-fast=y",
            "",
            "[postgres]",
            "pg1-path=/var/lib/postgresql/data/pgdata",
            "pg1-port=5432",
            "pg1-socket-path=/var/run/postgresql",
            "pg1-user=postgres",
        ]) + "\n")

    def test_another_s3_server_and_stanza(self):
        text = pgbackrest.config_file(load({**BASE_ENV, **BACKUP_ENV, "BACKUP_S3_CA_FILE": "/ca.crt", "BACKUP_S3_PORT": "7070",
                                            "BACKUP_S3_URI_STYLE": "path", "SCOPE": "db", "PGPORT": "6432", "SOCKET_DIR": "/sock"}))
        lines = text.splitlines()
        for line in ("repo1-s3-uri-style=path", "repo1-storage-port=7070", "repo1-storage-ca-file=/ca.crt", "[db]", "pg1-port=6432",
                     "pg1-socket-path=/sock"):
            self.assertIn(line, lines)
        self.assertEqual(lines.index("repo1-storage-ca-file=/ca.crt"), lines.index("start-fast=y") + 1)

    def test_written_mode_600_in_run_dir(self):
        with tempfile.TemporaryDirectory() as run_dir:
            s = load({**BASE_ENV, **BACKUP_ENV, "RUN_DIR": run_dir})
            pgbackrest.write_config(s)
            path = os.path.join(run_dir, "pgbackrest-postgres-1.conf")
            self.assertEqual(os.listdir(run_dir), ["pgbackrest-postgres-1.conf"])
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
            with open(path) as f:
                self.assertEqual(f.read(), pgbackrest.config_file(s))

    def test_nothing_to_write_without_a_bucket(self):
        with self.assertRaises(ConfigError) as e:
            pgbackrest.write_config(load(BASE_ENV))
        self.assertEqual(str(e.exception), "BACKUP_S3_BUCKET is not set: no repository to configure")


class CommandLine(unittest.TestCase):
    def test_this_pods_configuration_and_stanza_then_the_arguments(self):
        b = load({**BASE_ENV, **BACKUP_ENV}).backup
        assert b is not None
        self.assertEqual(pgbackrest.command(b, "info", "--output=json"),
                         ["pgbackrest", "--config=/var/run/postgresql/pgbackrest-postgres-1.conf", "--stanza=postgres", "info", "--output=json"])
        self.assertEqual(pgbackrest.command(b, "info", path="/other"),
                         ["pgbackrest", "--config=/var/run/postgresql/pgbackrest-postgres-1.conf", "--stanza=postgres", "--repo1-path=/other", "info"])


class ErrorLine(unittest.TestCase):
    def test_the_last_error_with_the_s3_codes_once_each(self):
        err = ("2026-11-24 14:01:00 P00 ERROR: [039]: HTTP request failed\n"
               "*** Response Content ***:\n<Error><Code>AccessDenied</Code></Error>\n"
               "P00 ERROR: [041]: unable to open file: [403] Forbidden <Code>AccessDenied</Code><Code>SignatureDoesNotMatch</Code>\n")
        self.assertEqual(pgbackrest.error_line("", err), "ERROR: [041]: unable to open file: [403] Forbidden <Code>AccessDenied</Code>"
                         "<Code>SignatureDoesNotMatch</Code> (AccessDenied, SignatureDoesNotMatch)")

    def test_an_error_on_stdout(self):
        self.assertEqual(pgbackrest.error_line("P00 ERROR: [055]: unable to load info file\n", None), "ERROR: [055]: unable to load info file")

    def test_without_an_error_line_the_last_line_said(self):
        self.assertEqual(pgbackrest.error_line("first\n", "  killed by signal 9  \n\n"), "first")
        self.assertEqual(pgbackrest.error_line(None, "only stderr\n"), "only stderr")
        self.assertEqual(pgbackrest.error_line("", ""), "no output")


if __name__ == "__main__":
    unittest.main()
