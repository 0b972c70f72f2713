"""patroni_config: Patroni's configuration, pg_hba.conf and the archive/restore commands, value by value."""
import os
import sys
import unittest

from pod_path import BACKUP_ENV, BASE_ENV, POD_DIR
from postgres_pod.patroni_config import archive_parameters, hba, patroni_config, restore_command
from postgres_pod.settings import load

PY = sys.executable
CONF = "/var/run/postgresql/pgbackrest-postgres-1.conf"


def config(**env: str) -> dict:
    return patroni_config(load({**BASE_ENV, **env}))


def with_backups(**env: str) -> dict:
    return config(**BACKUP_ENV, **env)


class Member(unittest.TestCase):
    def test_names_and_addresses(self):
        c = config()
        self.assertEqual((c["scope"], c["name"]), ("postgres", "postgres-1"))
        self.assertEqual(c["restapi"]["listen"], "0.0.0.0:8008")
        self.assertEqual(c["restapi"]["connect_address"], "10.244.0.7:8008")
        self.assertEqual(c["postgresql"]["listen"], "0.0.0.0:5432")
        self.assertEqual(c["postgresql"]["connect_address"], "10.244.0.7:5432")
        self.assertEqual(c["postgresql"]["data_dir"], "/var/lib/postgresql/data/pgdata")
        self.assertEqual(c["postgresql"]["bin_dir"], "/usr/lib/postgresql/15/bin")
        self.assertEqual(c["postgresql"]["pgpass"], "/var/run/postgresql/pgpass-postgres-1")
        self.assertEqual(c["postgresql"]["parameters"], {"unix_socket_directories": "/var/run/postgresql", "port": 5432})

    def test_the_dcs_is_configmaps_in_the_pods_namespace(self):
        self.assertEqual(config()["kubernetes"], {
            "namespace": "postgres", "labels": {"app": "postgres"}, "scope_label": "app.kubernetes.io/instance", "role_label": "role",
            "use_endpoints": False, "bypass_api_service": False, "pod_ip": "10.244.0.7"})
        self.assertEqual(config(KUBECONFIG_CONTEXT="kind")["kubernetes"]["context"], "kind")

    def test_credentials(self):
        c = config()
        self.assertEqual(c["restapi"]["authentication"], {"username": "patroni", "password": "api"})
        self.assertEqual(c["ctl"]["authentication"], {"username": "patroni", "password": "api"})
        self.assertEqual(c["postgresql"]["authentication"], {
            "superuser": {"username": "postgres", "password": "su"},
            "replication": {"username": "replicator", "password": "repl"},
            "rewind": {"username": "postgres", "password": "su"}})

    def test_bootstrap_with_initdb_and_the_post_bootstrap_script(self):
        b = config()["bootstrap"]
        self.assertEqual(b["initdb"], ["data-checksums", {"encoding": "UTF8"}, {"locale": "C.UTF-8"}, {"auth-local": "peer"}, {"auth-host": "scram-sha-256"}])
        self.assertEqual(b["post_bootstrap"], os.path.join(POD_DIR, "post-bootstrap.sh"))
        self.assertNotIn("method", b)

    def test_never_deletes_data_and_no_watchdog(self):
        c = config()
        self.assertEqual((c["postgresql"]["remove_data_directory_on_rewind_failure"], c["postgresql"]["remove_data_directory_on_diverged_timelines"]), (False, False))
        self.assertEqual(c["watchdog"], {"mode": "off"})
        self.assertEqual(c["tags"], {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False})
        self.assertEqual((c["postgresql"]["create_replica_methods"], c["postgresql"]["basebackup"]), (["basebackup"], [{"checkpoint": "fast"}]))

    def test_tls(self):
        c = config(TLS_DIR="/tls")
        self.assertEqual(c["postgresql"]["parameters"], {
            "unix_socket_directories": "/var/run/postgresql", "port": 5432, "ssl": "on", "ssl_cert_file": "/tls/tls.crt",
            "ssl_key_file": "/tls/tls.key", "ssl_ca_file": "/tls/ca.crt", "ssl_min_protocol_version": "TLSv1.2"})
        self.assertEqual(c["postgresql"]["authentication"]["replication"],
                         {"username": "replicator", "password": "repl", "sslmode": "verify-ca", "sslrootcert": "/tls/ca.crt"})
        self.assertEqual(c["postgresql"]["authentication"]["rewind"],
                         {"username": "postgres", "password": "su", "sslmode": "verify-ca", "sslrootcert": "/tls/ca.crt"})

    def test_an_adopted_standby_cannot_promote_and_connects_as_the_old_bootstrap_superuser(self):
        c = config(ADOPTING_STANDBY="true")
        self.assertTrue(c["tags"]["nofailover"])
        self.assertEqual(c["postgresql"]["authentication"]["superuser"], {"username": "stateful-flask-user", "password": "app"})
        self.assertEqual(c["postgresql"]["pg_hba"][:3], ["local all postgres peer", 'local all "stateful-flask-user" scram-sha-256', "local all all reject"])


class Hba(unittest.TestCase):
    def test_without_tls(self):
        self.assertEqual(hba(load({**BASE_ENV, "POD_CIDR": "10.244.0.0/16", "CLIENT_CIDR": "10.1.0.0/16,10.2.0.0/16"})), [
            "local all postgres peer",
            "local all all reject",
            'host replication "replicator" 127.0.0.1/32 scram-sha-256',
            "host all postgres 127.0.0.1/32 scram-sha-256",
            'host replication "replicator" ::1/128 scram-sha-256',
            "host all postgres ::1/128 scram-sha-256",
            'host replication "replicator" 10.244.0.0/16 scram-sha-256',
            "host all postgres 10.244.0.0/16 scram-sha-256",
            'host all "replicator" all reject',
            "host all postgres all reject",
            'host "stateful-flask-db" "stateful-flask-user" 10.1.0.0/16 scram-sha-256',
            'host "stateful-flask-db" "stateful-flask-user" 10.2.0.0/16 scram-sha-256',
            "host all all all reject",
        ])

    def test_with_tls_every_admitted_line_is_hostssl_and_plain_connections_are_rejected(self):
        lines = hba(load({**BASE_ENV, "TLS_DIR": "/tls", "POD_CIDR": "127.0.0.1/32,10.0.0.0/8"}))
        self.assertEqual(lines, [
            "local all postgres peer",
            "local all all reject",
            'hostssl replication "replicator" 127.0.0.1/32 scram-sha-256',
            "hostssl all postgres 127.0.0.1/32 scram-sha-256",
            'hostssl replication "replicator" ::1/128 scram-sha-256',
            "hostssl all postgres ::1/128 scram-sha-256",
            'hostssl replication "replicator" 10.0.0.0/8 scram-sha-256',
            "hostssl all postgres 10.0.0.0/8 scram-sha-256",
            'host all "replicator" all reject',
            "host all postgres all reject",
            'hostssl "stateful-flask-db" "stateful-flask-user" 0.0.0.0/0 scram-sha-256',
            "hostnossl all all all reject",
            "host all all all reject",
        ])


class Backups(unittest.TestCase):
    def test_no_archiving_without_a_repository(self):
        c = config()
        self.assertEqual(archive_parameters(load(BASE_ENV)), {})
        self.assertNotIn("recovery_conf", c["postgresql"])

    def test_archiving_through_archive_push_with_its_settings_on_the_command_line(self):
        self.assertEqual(archive_parameters(load({**BASE_ENV, **BACKUP_ENV, "SYNCHRONOUS_MODE": "strict"})), {
            "archive_mode": "on", "archive_timeout": 60,
            "archive_command": f"{PY} {POD_DIR}/archive_push.py --config={CONF} --stanza=postgres --pgdata=/var/lib/postgresql/data/pgdata "
                               "--bin=/usr/lib/postgresql/15/bin --run-dir=/var/run/postgresql --synchronous-mode=strict %p"})
        p = with_backups(ARCHIVE_TIMEOUT="10")["postgresql"]["parameters"]
        self.assertEqual((p["archive_mode"], p["archive_timeout"], p["port"]), ("on", 10, 5432))

    def test_a_replica_fetches_missing_wal_from_the_archive(self):
        self.assertEqual(with_backups()["postgresql"]["recovery_conf"],
                         {"restore_command": f'pgbackrest --config={CONF} --stanza=postgres archive-get %f "%p"'})

    def test_restore_command_of_another_repository_path(self):
        b = load({**BASE_ENV, **BACKUP_ENV}).backup
        assert b is not None
        self.assertEqual(restore_command(b, "/stateful-flask/prod"),
                         f'pgbackrest --config={CONF} --stanza=postgres --repo1-path=/stateful-flask/prod archive-get %f "%p"')

    def test_a_restore_bootstraps_from_the_backup_to_the_end_of_the_archive(self):
        b = with_backups(RESTORE_FROM_PATH="/stateful-flask/prod")["bootstrap"]
        self.assertEqual(b["method"], "pgbackrest")
        self.assertEqual(b["pgbackrest"], {
            "command": f"{PY} {POD_DIR}/pod.py restore", "keep_existing_recovery_conf": False, "no_params": True,
            "recovery_conf": {
                "restore_command": f'pgbackrest --config={CONF} --stanza=postgres --repo1-path=/stateful-flask/prod archive-get %f "%p"',
                "recovery_target_action": "promote", "recovery_target_timeline": "latest"}})

    def test_a_restore_to_a_time_gets_a_numeric_utc_offset(self):
        for given, rendered in (("2026-11-24T14:01:00Z", "2026-11-24 14:01:00+00:00"),
                                ("2026-11-24T14:01:00.25+02:00", "2026-11-24 14:01:00.250000+02:00"),
                                ("2026-11-24T14:01-05:00", "2026-11-24 14:01:00-05:00")):
            with self.subTest(given):
                recovery = with_backups(RESTORE_FROM_PATH="/prod", RESTORE_TARGET_TIME=given)["bootstrap"]["pgbackrest"]["recovery_conf"]
                self.assertEqual(recovery["recovery_target_time"], rendered)


if __name__ == "__main__":
    unittest.main()
