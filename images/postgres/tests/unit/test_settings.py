"""settings.load: the environment's defaults, and every validation error with the variable, its value and what is allowed."""
import dataclasses
import unittest

from pod_path import BACKUP_ENV, BASE_ENV, POD_DIR
from postgres_pod.errors import ConfigError
from postgres_pod.settings import BackupSettings, Settings, load


def settings(**env: str) -> Settings:
    return load({**BASE_ENV, **env})


def without(*names: str, backups: bool = False) -> dict:
    env = {**BASE_ENV, **(BACKUP_ENV if backups else {})}
    return {k: v for k, v in env.items() if k not in names}


class Defaults(unittest.TestCase):
    def test_the_statefulsets_environment_with_every_default(self):
        s = settings()
        self.assertEqual(dataclasses.asdict(s), {
            "name": "postgres-1", "scope": "postgres", "namespace": "postgres", "pod_ip": "10.244.0.7", "listen": "0.0.0.0",
            "pgport": 5432, "api_port": 8008, "pgdata": "/var/lib/postgresql/data/pgdata", "bin_dir": "/usr/lib/postgresql/15/bin",
            "run_dir": "/var/run/postgresql", "socket_dir": "/var/run/postgresql", "superuser_password": "su",
            "replication_user": "replicator", "replication_password": "repl", "app_user": "stateful-flask-user",
            "app_database": "stateful-flask-db", "app_password": "app", "api_password": "api", "pod_cidrs": ("10.244.0.0/16",),
            "client_cidrs": ("0.0.0.0/0",), "synchronous_mode": "on", "ttl": 7, "loop_wait": 1, "retry_timeout": 3,
            "max_slot_wal_keep_size": "1GB", "labels": {"app": "postgres"}, "scope_label": "app.kubernetes.io/instance",
            "kube_context": None, "adopting_standby": False, "parameters": {}, "tls_dir": None, "backup": None, "lib_dir": POD_DIR,
        })

    def test_an_empty_value_counts_as_unset(self):
        self.assertEqual(settings(PGPORT="", SCOPE="", SYNCHRONOUS_MODE="").pgport, 5432)
        self.assertEqual(settings(SCOPE="").scope, "postgres")
        with self.assertRaisesRegex(ConfigError, "^APP_PASSWORD is required$"):
            settings(APP_PASSWORD="")

    def test_values_given(self):
        s = settings(SCOPE="db", PGPORT="6432", API_PORT="9008", RUN_DIR="/run/pg", POD_CIDR="10.0.0.0/8, 127.0.0.1/32 ::1/128",
                     CLIENT_CIDR="10.1.0.0/16,10.2.0.0/16", SYNCHRONOUS_MODE="strict", TTL="30", LOOP_WAIT="10", RETRY_TIMEOUT="10",
                     MAX_SLOT_WAL_KEEP_SIZE="-1", KUBERNETES_LABELS='{"app": "pg", "tier": "db"}', KUBECONFIG_CONTEXT="kind",
                     POSTGRES_PARAMETERS='{"work_mem": "8MB", "max_connections": 200}', TLS_DIR="/tls", ADOPTING_STANDBY="true")
        self.assertEqual((s.scope, s.pgport, s.api_port, s.run_dir, s.socket_dir), ("db", 6432, 9008, "/run/pg", "/run/pg"))
        self.assertEqual(s.pod_cidrs, ("10.0.0.0/8", "127.0.0.1/32", "::1/128"))
        self.assertEqual(s.client_cidrs, ("10.1.0.0/16", "10.2.0.0/16"))
        self.assertEqual((s.synchronous_mode, s.ttl, s.loop_wait, s.retry_timeout), ("strict", 30, 10, 10))
        self.assertEqual((s.max_slot_wal_keep_size, s.labels, s.kube_context), ("-1", {"app": "pg", "tier": "db"}, "kind"))
        self.assertEqual((s.parameters, s.tls_dir, s.adopting_standby), ({"work_mem": "8MB", "max_connections": 200}, "/tls", True))

    def test_only_the_word_true_adopts_a_standby(self):
        self.assertFalse(settings(ADOPTING_STANDBY="yes").adopting_standby)

    def test_settings_are_frozen(self):
        with self.assertRaises(dataclasses.FrozenInstanceError):
            settings().pgport = 1  # type: ignore[misc]


class Errors(unittest.TestCase):
    def fails(self, env: dict, message: str) -> None:
        with self.assertRaises(ConfigError) as e:
            load(env)
        self.assertEqual(str(e.exception), message)

    def test_each_required_variable(self):
        for name in ("POD_NAME", "POD_NAMESPACE", "POD_IP", "PGDATA", "SUPERUSER_PASSWORD", "REPLICATION_PASSWORD", "APP_PASSWORD", "API_PASSWORD"):
            with self.subTest(name):
                self.fails(without(name), f"{name} is required")

    def test_names_addresses_and_paths(self):
        self.fails({**BASE_ENV, "POD_NAME": "Postgres_1"}, "POD_NAME='Postgres_1' is not valid; expected a pod name such as postgres-0")
        self.fails({**BASE_ENV, "POD_NAME": "postgres-"}, "POD_NAME='postgres-' is not valid; expected a pod name such as postgres-0")
        self.fails({**BASE_ENV, "POD_IP": "pod-ip"}, "POD_IP='pod-ip' is not an IP address")
        self.fails({**BASE_ENV, "PGDATA": "/data"}, "PGDATA='/data' is not valid; expected an absolute path to a subdirectory of the volume")
        self.fails({**BASE_ENV, "PGDATA": "var/lib/data"}, "PGDATA='var/lib/data' is not valid; expected an absolute path to a subdirectory of the volume")

    def test_integers_name_their_range(self):
        self.fails({**BASE_ENV, "PGPORT": "70000"}, "PGPORT='70000' is not valid; expected an integer from 1 to 65535")
        self.fails({**BASE_ENV, "API_PORT": "80a"}, "API_PORT='80a' is not valid; expected an integer from 1 to 65535")
        self.fails({**BASE_ENV, "TTL": "4"}, "TTL='4' is not valid; expected an integer from 5 to 300")
        self.fails({**BASE_ENV, "LOOP_WAIT": "0"}, "LOOP_WAIT='0' is not valid; expected an integer from 1 to 60")
        self.fails({**BASE_ENV, "RETRY_TIMEOUT": "-1"}, "RETRY_TIMEOUT='-1' is not valid; expected an integer from 1 to 120")

    def test_role_names(self):
        self.fails({**BASE_ENV, "REPLICATION_USER": 'a"b'},
                   "REPLICATION_USER='a\"b' is not valid; expected a role name of at most 63 characters without double quotes")
        self.fails({**BASE_ENV, "APP_USER": "x" * 64},
                   f"APP_USER='{'x' * 64}' is not valid; expected a role name of at most 63 characters without double quotes")
        self.fails({**BASE_ENV, "REPLICATION_USER": "postgres"}, "REPLICATION_USER='postgres' must differ from APP_USER and from the superuser postgres")
        self.fails({**BASE_ENV, "REPLICATION_USER": "app", "APP_USER": "app"}, "REPLICATION_USER='app' must differ from APP_USER and from the superuser postgres")

    def test_cidrs(self):
        self.fails({**BASE_ENV, "POD_CIDR": "10.244.0.0"}, "POD_CIDR contains '10.244.0.0'; expected a CIDR with a prefix length, e.g. 10.244.0.0/32")
        self.fails({**BASE_ENV, "CLIENT_CIDR": "10.0.0.0/8,anywhere"}, "CLIENT_CIDR contains 'anywhere'; expected CIDRs such as 10.244.0.0/16 or 127.0.0.1/32")
        self.fails({**BASE_ENV, "POD_CIDR": " , "}, "POD_CIDR is empty; expected one or more CIDRs such as 10.244.0.0/16")

    def test_replication_settings(self):
        self.fails({**BASE_ENV, "SYNCHRONOUS_MODE": "yes"}, "SYNCHRONOUS_MODE='yes' is not valid; expected one of on, off, strict")
        self.fails({**BASE_ENV, "TTL": "6"}, "TTL=6, LOOP_WAIT=1, RETRY_TIMEOUT=3: LOOP_WAIT + 2 * RETRY_TIMEOUT must not exceed TTL")
        self.fails({**BASE_ENV, "MAX_SLOT_WAL_KEEP_SIZE": "1G"},
                   "MAX_SLOT_WAL_KEEP_SIZE='1G' is not valid; expected a size such as 512MB or 1GB (-1 = unlimited)")

    def test_json_values(self):
        self.fails({**BASE_ENV, "KUBERNETES_LABELS": "{"},
                   "KUBERNETES_LABELS is not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)): '{'")
        self.fails({**BASE_ENV, "KUBERNETES_LABELS": '{"app": 1}'}, 'KUBERNETES_LABELS must be a JSON object of strings, e.g. {"app": "postgres"}')
        self.fails({**BASE_ENV, "POSTGRES_PARAMETERS": "work_mem=8MB"},
                   "POSTGRES_PARAMETERS is not valid JSON (Expecting value: line 1 column 1 (char 0)): 'work_mem=8MB'")

    def test_the_first_bad_value_is_the_one_reported(self):
        self.fails({**BASE_ENV, "PGPORT": "0", "SYNCHRONOUS_MODE": "yes"}, "PGPORT='0' is not valid; expected an integer from 1 to 65535")


class Backups(unittest.TestCase):
    def fails(self, env: dict, message: str) -> None:
        with self.assertRaises(ConfigError) as e:
            load({**BASE_ENV, **BACKUP_ENV, **env})
        self.assertEqual(str(e.exception), message)

    def test_the_repository_with_every_default(self):
        self.assertEqual(load({**BASE_ENV, **BACKUP_ENV}).backup, BackupSettings(
            bucket="stateful-flask-dev-pgbackrest", endpoint="fra1.digitaloceanspaces.com", region="fra1", path="/stateful-flask/dev",
            uri_style="host", key="key", key_secret="key-secret", cipher_pass="cipher-pass", schedule="0 3 * * *", retention_full=7,
            archive_timeout=60, io_timeout=60, ca_file=None, port=443, stanza="postgres", restore_from=None, restore_target=None,
            conf="/var/run/postgresql/pgbackrest-postgres-1.conf"))

    def test_the_stanza_is_the_scope_and_the_configuration_lives_in_run_dir(self):
        b = load({**BASE_ENV, **BACKUP_ENV, "SCOPE": "db", "RUN_DIR": "/run/pg"}).backup
        assert b is not None
        self.assertEqual((b.stanza, b.conf), ("db", "/run/pg/pgbackrest-postgres-1.conf"))

    def test_a_restore_source_and_target(self):
        b = load({**BASE_ENV, **BACKUP_ENV, "RESTORE_FROM_PATH": "/stateful-flask/prod", "RESTORE_TARGET_TIME": "2026-11-24T14:01:00+01:00"}).backup
        assert b is not None
        self.assertEqual((b.restore_from, b.restore_target), ("/stateful-flask/prod", "2026-11-24T14:01:00+01:00"))

    def test_each_required_variable(self):
        for name in ("BACKUP_S3_ENDPOINT", "BACKUP_S3_REGION", "BACKUP_PATH", "BACKUP_S3_KEY", "BACKUP_S3_KEY_SECRET", "BACKUP_CIPHER_PASS"):
            with self.subTest(name), self.assertRaises(ConfigError) as e:
                load(without(name, backups=True))
            self.assertEqual(str(e.exception), f"{name} is required")

    def test_a_restore_needs_a_bucket(self):
        with self.assertRaises(ConfigError) as e:
            load({**BASE_ENV, "RESTORE_FROM_PATH": "/stateful-flask/prod"})
        self.assertEqual(str(e.exception), "RESTORE_FROM_PATH is set but BACKUP_S3_BUCKET is not: a restore reads the repository in that bucket")

    def test_paths(self):
        self.fails({"BACKUP_PATH": "stateful-flask/dev"}, "BACKUP_PATH='stateful-flask/dev' is not valid; expected an absolute path such as /stateful-flask/dev")
        self.fails({"RESTORE_FROM_PATH": "/a b"}, "RESTORE_FROM_PATH='/a b' is not valid; expected an absolute path such as /stateful-flask/dev")
        self.fails({"RESTORE_FROM_PATH": "/stateful-flask/dev/"},
                   "RESTORE_FROM_PATH='/stateful-flask/dev/' is BACKUP_PATH: a restored cluster archives to a path of its own")

    def test_restore_target_time(self):
        rule = "is not valid; expected a time with its UTC offset, such as 2026-11-24T14:01:00Z, and RESTORE_FROM_PATH"
        self.fails({"RESTORE_FROM_PATH": "/prod", "RESTORE_TARGET_TIME": "2026-11-24T14:01:00"}, f"RESTORE_TARGET_TIME='2026-11-24T14:01:00' {rule}")
        self.fails({"RESTORE_TARGET_TIME": "2026-11-24T14:01:00Z"}, f"RESTORE_TARGET_TIME='2026-11-24T14:01:00Z' {rule}")

    def test_uri_style_schedule_and_integers(self):
        self.fails({"BACKUP_S3_URI_STYLE": "virtual"}, "BACKUP_S3_URI_STYLE='virtual' is not valid; expected host or path")
        self.fails({"BACKUP_SCHEDULE": "@daily"},
                   "BACKUP_SCHEDULE='@daily' is not valid; expected a 5-field cron expression \"minute hour day-of-month month "
                   "day-of-week\" of numbers, *, ranges a-b, lists a,b and steps */n or a-b/n, such as \"0 3 * * *\"")
        self.fails({"BACKUP_SCHEDULE": "0 3 31 2 *"},
                   "BACKUP_SCHEDULE='0 3 31 2 *' is not valid; day of month 31 does not occur every year in month 2, so the "
                   "schedule would never fire, or fire once in four years; expected days that occur every year in those "
                   "months, such as 1-28")
        self.fails({"BACKUP_RETENTION_FULL": "0"}, "BACKUP_RETENTION_FULL='0' is not valid; expected an integer from 1 to 100")
        self.fails({"ARCHIVE_TIMEOUT": "5"}, "ARCHIVE_TIMEOUT='5' is not valid; expected an integer from 10 to 3600")
        self.fails({"BACKUP_IO_TIMEOUT": "3601"}, "BACKUP_IO_TIMEOUT='3601' is not valid; expected an integer from 1 to 3600")
        self.fails({"BACKUP_S3_PORT": "0"}, "BACKUP_S3_PORT='0' is not valid; expected an integer from 1 to 65535")


if __name__ == "__main__":
    unittest.main()
