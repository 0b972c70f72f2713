"""bootstrap_check: what a repository holds, and whether an empty member of a cluster the DCS never recorded may make one."""
import io
import json
import unittest
import urllib.error
from unittest import mock

from pod_path import BACKUP_ENV, BASE_ENV
from postgres_pod import bootstrap_check
from postgres_pod.bootstrap_check import decide, next_path, repository
from postgres_pod.errors import ConfigError
from postgres_pod.settings import load

# pgbackrest 2.45 `info --output=json`, as printed for a path with nothing in it and for an unreachable store.
MISSING = [{"archive": [], "backup": [], "cipher": "none", "db": [], "name": "postgres",
            "repo": [{"cipher": "none", "key": 1, "status": {"code": 1, "message": "missing stanza path"}}],
            "status": {"code": 1, "lock": {"backup": {"held": False}}, "message": "missing stanza path"}}]
UNREACHABLE = [{"archive": [], "backup": [], "cipher": "none", "db": [], "name": "postgres",
                "repo": [{"cipher": "none", "key": 1, "status": {"code": 99, "message": "[HostConnectError] unable to connect to 'localhost:1': [111] Connection refused"}}],
                "status": {"code": 99, "lock": {"backup": {"held": False}}, "message": "other"}}]
# A stanza with two full backups and archived WAL on timeline 2.
USED = [{"archive": [{"database": {"id": 1, "repo-key": 1}, "id": "15-1", "max": "000000020000000000000009", "min": "000000010000000000000001"}],
         "backup": [{"archive": {"start": "000000010000000000000003", "stop": "000000010000000000000003"}, "label": "20261201-030000F",
                     "timestamp": {"start": 1764558000, "stop": 1764558010}, "type": "full"},
                    {"archive": {"start": "000000020000000000000007", "stop": "000000020000000000000007"}, "label": "20261202-030000F",
                     "timestamp": {"start": 1764644400, "stop": 1764644410}, "type": "full"}],
         "cipher": "aes-256-cbc", "db": [{"id": 1, "repo-key": 1, "system-id": 7308448119999999999, "version": "15"}], "name": "postgres",
         "repo": [{"cipher": "aes-256-cbc", "key": 1, "status": {"code": 0, "message": "ok"}}],
         "status": {"code": 0, "lock": {"backup": {"held": False}}, "message": "ok"}}]
# A stanza created by a cluster that was lost before it archived anything.
BARE = [dict(USED[0], archive=[{"database": {"id": 1, "repo-key": 1}, "id": "15-1", "max": None, "min": None}], backup=[],
             status={"code": 2, "message": "no valid backups"})]


def backup(**env: str):
    return load({**BASE_ENV, **BACKUP_ENV, **env}).backup


class Parse(unittest.TestCase):
    def test_a_path_with_nothing_in_it_is_empty(self):
        r = repository(MISSING, "postgres")
        self.assertTrue(r.empty)
        self.assertEqual((r.error, r.system_ids, r.backups, r.archive_max), (None, (), (), None))

    def test_an_unreachable_store_is_an_error_not_an_empty_repository(self):
        r = repository(UNREACHABLE, "postgres")
        self.assertFalse(r.empty)
        self.assertEqual(r.error, "[HostConnectError] unable to connect to 'localhost:1': [111] Connection refused")

    def test_a_used_stanza(self):
        r = repository(USED, "postgres")
        self.assertFalse(r.empty)
        self.assertIsNone(r.error)
        self.assertEqual(r.system_ids, (7308448119999999999,))
        self.assertEqual(r.backups, (("20261201-030000F", 1764558010), ("20261202-030000F", 1764644410)))
        self.assertEqual(r.archive_max, "000000020000000000000009")

    def test_another_stanza_is_not_this_one(self):
        self.assertEqual(repository(USED, "other").error, "pgbackrest info listed no stanza other")


class NextPath(unittest.TestCase):
    def test_a_number_is_appended_or_counted_up(self):
        self.assertEqual(next_path("/stateful-flask/dev"), "/stateful-flask/dev-2")
        self.assertEqual(next_path("/stateful-flask/dev-2"), "/stateful-flask/dev-3")
        self.assertEqual(next_path("/stateful-flask/dev/"), "/stateful-flask/dev-2")


class Decide(unittest.TestCase):
    def test_a_cluster_the_dcs_records_is_joined_without_reading_the_repository(self):
        self.assertEqual(decide(backup(), "postgres", True, None).action, "go")
        self.assertEqual(decide(backup(RESTORE_FROM_PATH="/stateful-flask/old"), "postgres", True, None).action, "go")

    def test_an_empty_repository_gets_a_new_cluster_or_the_restore(self):
        self.assertEqual(decide(backup(), "postgres", False, repository(MISSING, "postgres")).action, "go")
        self.assertEqual(decide(backup(RESTORE_FROM_PATH="/stateful-flask/old"), "postgres", False, repository(MISSING, "postgres")).action, "go")

    def test_a_total_loss_with_restore_from_still_set_refuses_to_go_back_in_time(self):
        v = decide(backup(RESTORE_FROM_PATH="/stateful-flask/old", RESTORE_TARGET_TIME="2026-11-24T14:01:00Z"), "postgres", False,
                   repository(USED, "postgres"))
        self.assertEqual(v.action, "refuse")
        self.assertEqual(v.message, (
            "the volume is empty and the cluster was never initialised (no initialize annotation on ConfigMap postgres-config), but this "
            "cluster's repository s3://stateful-flask-dev-pgbackrest/stateful-flask/dev already holds stanza postgres: system id "
            "7308448119999999999, 2 backups, the newest 20261202-030000F (ended 2025-12-02T03:00:10Z), WAL archived up to "
            "000000020000000000000009. RESTORE_FROM_PATH=/stateful-flask/old is set, but this stack's own repository is newer: the cluster "
            "restored from it archived there since, so a second restore would silently go back in time and drop every write made after "
            "the first. Nothing was initialised and nothing was written. Choose: (1) bring back this repository's latest state: "
            "pulumi config set restoreFrom /stateful-flask/dev && pulumi config set backupPath /stateful-flask/dev-2 && "
            "pulumi config rm restoreTargetTime && pulumi up; (2) start an empty database and leave this repository as it is: "
            "pulumi config rm restoreFrom && pulumi config set backupPath /stateful-flask/dev-2 && pulumi up; (3) restore "
            "/stateful-flask/old again on purpose, without what this stack archived since: pulumi config set backupPath "
            "/stateful-flask/dev-2 && pulumi up. The repository is never deleted"))

    def test_a_new_cluster_over_another_clusters_stanza_is_refused_before_initdb(self):
        v = decide(backup(), "postgres", False, repository(USED, "postgres"))
        self.assertEqual(v.action, "refuse")
        self.assertIn("A new database gets a new system id, which pgBackRest refuses to archive into this stanza: archiving would fail on "
                      "every segment while pg_wal fills the volume. Nothing was initialised and nothing was written. Choose: (1) bring back "
                      "this repository's latest state: pulumi config set restoreFrom /stateful-flask/dev && pulumi config set backupPath "
                      "/stateful-flask/dev-2 && pulumi up; (2) start an empty database and leave this repository as it is: pulumi config set "
                      "backupPath /stateful-flask/dev-2 && pulumi up. The repository is never deleted", v.message)

    def test_a_stanza_without_backups_offers_only_a_new_path(self):
        v = decide(backup(), "pg", False, repository(BARE, "postgres"))
        self.assertEqual(v.action, "refuse")
        self.assertIn("no initialize annotation on ConfigMap pg-config", v.message)
        self.assertIn("holds stanza postgres: system id 7308448119999999999, no backup, no archived WAL.", v.message)
        self.assertIn("Choose: (1) start an empty database and leave this repository as it is: pulumi config set backupPath "
                      "/stateful-flask/dev-2 && pulumi up. The repository", v.message)

    def test_an_unreadable_repository_warns_a_new_cluster_but_stops_a_restore(self):
        unreachable = repository(UNREACHABLE, "postgres")
        v = decide(backup(), "postgres", False, unreachable)
        self.assertEqual(v.action, "warn")
        self.assertIn("cannot read this cluster's repository s3://stateful-flask-dev-pgbackrest/stateful-flask/dev ([HostConnectError]", v.message)
        v = decide(backup(RESTORE_FROM_PATH="/stateful-flask/old"), "postgres", False, unreachable)
        self.assertEqual(v.action, "refuse")
        self.assertIn("a restore from RESTORE_FROM_PATH=/stateful-flask/old starts only once this repository is known to hold no newer "
                      "state of the cluster", v.message)


class CheckBootstrap(unittest.TestCase):
    """The order of the reads: the DCS, the repository, the DCS again."""

    def run_check(self, annotations: list, info: list):
        settings = load({**BASE_ENV, **BACKUP_ENV, "RESTORE_FROM_PATH": "/stateful-flask/old"})
        reads = iter(annotations)
        calls = []

        def request(method, path, body=None):
            calls.append((method, path))
            if method == "POST":
                return {}
            a = next(reads)
            if a is None:
                raise urllib.error.HTTPError(path, 404, "Not Found", {}, io.BytesIO())
            return {"metadata": {"annotations": a}}
        with mock.patch.object(bootstrap_check.kube, "request", side_effect=request), \
                mock.patch.object(bootstrap_check.pgbackrest, "run", return_value=(0, json.dumps(info), "")) as run, \
                mock.patch("sys.stderr", io.StringIO()):
            try:
                bootstrap_check.check_bootstrap(settings)
                error = None
            except ConfigError as e:
                error = str(e)
        return error, calls, run.call_count

    def test_a_recorded_cluster_is_not_checked_against_the_repository(self):
        error, calls, runs = self.run_check([{"initialize": "7308448119999999999"}], USED)
        self.assertEqual((error, runs), (None, 0))
        self.assertEqual(calls, [("GET", "/api/v1/namespaces/postgres/configmaps/postgres-config")])

    def test_a_member_that_began_to_bootstrap_meanwhile_is_not_a_conflict(self):
        # An empty initialize annotation: another member took the key and is bootstrapping.
        error, calls, runs = self.run_check([None, {"initialize": ""}], USED)
        self.assertEqual((error, runs, len(calls)), (None, 1, 2))

    def test_a_refusal_is_an_error_and_a_warning_event(self):
        error, calls, runs = self.run_check([None, {"config": "{}"}], USED)
        self.assertTrue(error.startswith("the volume is empty and the cluster was never initialised"), error)
        self.assertEqual(calls[-1], ("POST", "/api/v1/namespaces/postgres/events"))

    def test_an_empty_repository_passes(self):
        self.assertEqual(self.run_check([None, None], MISSING)[0], None)


if __name__ == "__main__":
    unittest.main()
