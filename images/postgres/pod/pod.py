#!/usr/bin/python3
"""Helpers of the Postgres pod's entrypoint (entrypoint.sh), in Python because Patroni already brings it.

    pod.py config                 print Patroni's configuration (JSON, which Patroni reads as YAML) from the environment
    pod.py dynamic-config         print the cluster-wide settings that live in the DCS (what `config` bootstraps with)
    pod.py check-dcs              fail with a clear message unless the Kubernetes API answers and allows what Patroni needs
    pod.py apply-dynamic-config   once the local Patroni answers, make the DCS settings equal `dynamic-config`
    pod.py wait-leader            block until the cluster has a leader other than this member and this member runs
    pod.py pre-stop               the pod's preStop hook: a leader with a healthy replica hands leadership over first
    pod.py sync-guard             on the leader: un-stick commits that wait for a synchronous standby that is gone
    pod.py pgbackrest-conf        write pgBackRest's configuration (RUN_DIR, mode 600)
    pod.py backup-agent           on the leader: the stanza, the first and the scheduled backups, the archiver's state
    pod.py backup-status          the repository's backups and the archiver, as JSON
    pod.py full-backup            on the leader: a full backup now (what the agent does on the schedule)
    pod.py check-archive [PATH]   fail unless the repository can restore without a hole in its WAL archive
    pod.py restore                Patroni's custom bootstrap: PGDATA from the backup (RESTORE_FROM_PATH)
    pod.py env                    print `export NAME=value` lines of the settings the SQL scripts read (defaults applied)

Environment: see README.md next to this file. Every error names the variable, its value and what is allowed.
"""
import json
import os
import re
import shlex
import sys
import time
import urllib.error
import urllib.request

from postgres_pod import adoption, cluster_settings, kube, local_db, patroni_api, pgbackrest, switchover, sync_guard
from postgres_pod.log import log
from postgres_pod.patroni_config import patroni_config
from postgres_pod.schedule import last_scheduled
from postgres_pod.settings import ConfigError, Environment, load

# ------------------------------------------------------------------------------------------------ backups

WAL_NAME = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})")


def wal_index(name):
    """(timeline, position) of a WAL segment file name; 16 MB segments: 256 per log id."""
    m = WAL_NAME.match(name)
    return int(m.group(1), 16), int(m.group(2), 16) * 256 + int(m.group(3), 16)


def check_archive(s, path, target=None):
    """
    The repository at `path` can restore without a silent hole: a backup to start from (finished before `target`
    when one is given), and every WAL segment from that backup's start to the newest archived one. pgBackRest and
    PostgreSQL do not check this: a missing segment ends recovery early and the database is promoted without the
    rows after the gap (docs/backups.md, "Failure modes"). Returns the backup's label, or raises ConfigError.
    """
    status, out, err = pgbackrest.run(s.backup, "info", "--output=json", path=path, timeout=300)
    if status != 0:
        raise ConfigError("cannot read the repository %s: %s" % (path, pgbackrest.error_line(out, err)))
    stanzas = json.loads(out)
    stanza = next((x for x in stanzas if x.get("name") == s.backup.stanza), None)
    backups = (stanza or {}).get("backup", [])
    if not backups:
        raise ConfigError("the repository %s holds no backup of stanza %s; nothing to restore from" % (path, s.backup.stanza))
    if target:
        from datetime import datetime
        limit = datetime.fromisoformat(target.replace("Z", "+00:00")).timestamp()
        usable = [x for x in backups if x["timestamp"]["stop"] < limit]
        if not usable:
            raise ConfigError("RESTORE_TARGET_TIME=%s is before the oldest backup in %s (it ended at %s)" % (
                target, path, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(backups[0]["timestamp"]["stop"]))))
        backup = usable[-1]
    else:
        backup = backups[-1]
    start = wal_index(backup["archive"]["start"])[1]
    status, out, err = pgbackrest.run(s.backup, "repo-ls", "--recurse", "--output=json", "archive/%s" % s.backup.stanza, path=path, timeout=300)
    if status != 0:
        raise ConfigError("cannot list the WAL archive in %s: %s" % (path, (err or out).strip()))
    have = {}  # position -> timelines that archived a segment there
    for name in json.loads(out):
        base = name.rsplit("/", 1)[-1]
        if WAL_NAME.match(base) and len(base) >= 24 and not base[24:].startswith(".history"):
            tli, position = wal_index(base)
            have.setdefault(position, set()).add(tli)
    newest = max(have) if have else start
    missing = [i for i in range(start, newest + 1) if i not in have]
    if missing:
        first = missing[0]
        # The missing file's name carries the timeline its predecessor was written on.
        tli = max(have.get(first - 1) or {wal_index(backup["archive"]["start"])[0]})
        raise ConfigError("the WAL archive in %s has a hole: segment %08X%08X%08X and %d more between backup %s and the newest archived segment "
                          "are missing. Restoring would end at the hole and promote a database without the rows after it; refusing. A deleted "
                          "segment may still be in the bucket as a noncurrent version (versioning keeps them for backupRetentionDays): "
                          "bring it back, then restart this pod" % (path, tli, first // 256, first % 256, len(missing) - 1, backup["label"]))
    # Every file's checksum: a damaged segment would end recovery exactly like a missing one.
    status, out, err = pgbackrest.run(s.backup, "verify", path=path, timeout=6 * 3600)
    damaged = []
    for name, reason in re.findall(r"invalid result (\S+): (.*)", out + err):
        base = name.rsplit("/", 1)[-1]
        damaged.append("WAL segment %s (%s)" % (base[:24], reason.strip()) if WAL_NAME.match(base) else "%s (%s)" % (name, reason.strip()))
    if status != 0 or damaged or re.search(r"status: error", out + err):
        raise ConfigError("the repository %s has damaged files: %s. Restoring from it would end recovery at the damage and promote a database "
                          "without the rows after it; refusing. Restore to a time before the damage, or repair the file" % (
                              path, "; ".join(damaged) or "pgbackrest verify exited %d:\n%s" % (status, (out + err).strip())))
    log("archive check: backup %s, %d WAL segments from its start to the newest, no hole, every file verified" % (backup["label"], newest - start + 1))
    return backup["label"]


def restore(s):
    """Patroni's custom bootstrap: PGDATA from the backup, after the archive check; Patroni then recovers it."""
    b = s.backup
    label = check_archive(s, b.restore_from, b.restore_target)
    pgdata = s.pgdata
    os.makedirs(pgdata, mode=0o700, exist_ok=True)
    if os.listdir(pgdata):
        raise ConfigError("%s is not empty; a restore never writes over a data directory" % pgdata)
    log("restoring backup %s from %s%s" % (label, b.restore_from, " to %s" % b.restore_target if b.restore_target else " to the end of the archive"))
    status, out, err = pgbackrest.run(s.backup, "restore", "--pg1-path=%s" % pgdata, "--set=%s" % label, "--type=default", path=b.restore_from)
    sys.stderr.write(out + err)
    if status != 0:
        raise ConfigError("pgbackrest restore failed (exit %d); see above" % status)
    # pgBackRest writes its own recovery settings into postgresql.auto.conf, which would override the ones
    # Patroni writes (restore_command from the source path, the target time, promote): they go.
    auto = os.path.join(pgdata, "postgresql.auto.conf")
    if os.path.exists(auto):
        with open(auto) as f:
            keep = [line for line in f if not re.match(r"\s*(restore_command|recovery_target\w*)\s*=", line)]
        with open(auto, "w") as f:
            f.writelines(keep)


def report(s, annotations, event=None):
    """The backup state on this member's pod (annotations), and a Warning event when something fails."""
    try:
        kube.request("PATCH", "/api/v1/namespaces/%s/pods/%s" % (s.namespace, s.name), {"metadata": {"annotations": annotations}})
        if event:
            reason, message = event
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            kube.request("POST", "/api/v1/namespaces/%s/events" % s.namespace, {
                "metadata": {"generateName": "%s-backup-" % s.name},
                "involvedObject": {"kind": "Pod", "name": s.name, "namespace": s.namespace, "apiVersion": "v1"},
                "reason": reason, "message": message, "type": "Warning", "firstTimestamp": now, "lastTimestamp": now,
                "count": 1, "source": {"component": "stateful-flask-backup"},
            })
    except (urllib.error.URLError, OSError, ValueError, ConfigError) as e:
        log("could not record the backup state on the pod: %s" % e)


def archiver(s):
    """pg_stat_archiver of the local server, and the size of pg_wal (what a failing archive makes grow)."""
    with local_db.cursor(s) as cur:
        # float8 and bigint: extract() and sum() return numeric, which psycopg2 reads as Decimal.
        cur.execute("SELECT archived_count, last_archived_wal, extract(epoch FROM last_archived_time)::float8, failed_count,"
                    " last_failed_wal, extract(epoch FROM last_failed_time)::float8,"
                    " (SELECT coalesce(sum(size), 0)::bigint FROM pg_ls_waldir()) FROM pg_stat_archiver")
        row = cur.fetchone()
        keys = ("archived", "last_archived_wal", "last_archived_time", "failed", "last_failed_wal", "last_failed_time", "pg_wal_bytes")
        return dict(zip(keys, row))


def backup_status(s):
    """What `backup-status` prints: the repository's backups and this member's archiver."""
    out = {"stanza": s.backup.stanza, "path": s.backup.path}
    status, text, err = pgbackrest.run(s.backup, "info", "--output=json", timeout=120)
    if status == 0:
        info = next((x for x in json.loads(text) if x.get("name") == s.backup.stanza), {})
        out["repository"] = (info.get("status") or {}).get("message")
        out["backups"] = [{"label": b["label"], "type": b["type"],
                           "stop": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(b["timestamp"]["stop"])),
                           "wal": [b["archive"]["start"], b["archive"]["stop"]]} for b in info.get("backup", [])]
    else:
        out["repository"] = "unreadable: %s" % pgbackrest.error_line(text, err)
    try:
        out["archiver"] = archiver(s)
    except Exception as e:  # noqa: BLE001 -- a replica or a stopped server has no archiver to show
        out["archiver"] = "unavailable: %s" % e
    return out


def report_archive_conflicts(s, seen):
    """A Warning event for each segment archive-push left out since the `seen` first lines (archive_push)."""
    path = os.path.join(s.run_dir, "archive-conflicts")
    if not os.path.exists(path):
        return seen
    with open(path) as f:
        lines = f.read().splitlines()
    for line in lines[seen:]:
        message = json.loads(line)["message"]
        report(s, {}, ("DivergentWALNotArchived", message))
    return len(lines)


def backup_agent(s):
    """
    Runs in every pod, acts on the leader only: creates the stanza (the repository's record of this cluster), takes a
    full backup at once when the repository has none and then on the schedule, and watches the archiver. The state
    goes on the pod (annotations stateful-flask/last-backup, stateful-flask/archive), failures also as Warning events.
    """
    b = s.backup
    interval = Environment(os.environ).integer("BACKUP_AGENT_INTERVAL", 30, 1, 3600)
    stanza_ok = False
    failing_since = None
    last_stop = None
    last_error = None
    retry_at = 0.0
    events = {}
    conflicts_seen = 0  # lines of RUN_DIR/archive-conflicts already reported

    def warn(annotations, reason, message):
        # One Warning event per reason every 10 minutes; the annotation and the log line every loop.
        if time.time() - events.get(reason, 0) > 600:
            events[reason] = time.time()
            report(s, annotations, (reason, message))
        else:
            report(s, annotations)

    while True:
        try:
            me = patroni_api.get(s, "/patroni")
            if me.get("role") != "master" or me.get("state") != "running":
                stanza_ok = False
                last_stop = None
            else:
                if not stanza_ok:
                    status, out, err = pgbackrest.run(s.backup, "stanza-create", timeout=600)
                    if status == 0:
                        stanza_ok = True
                        log("backup: stanza %s ready in %s" % (b.stanza, b.path))
                    else:
                        message = "stanza-create failed (exit %d): %s" % (status, pgbackrest.error_line(out, err))
                        log("backup: ERROR %s" % message)
                        warn({"stateful-flask/archive": "failing: %s" % message}, "BackupRepositoryUnavailable", message)
                if stanza_ok:
                    if last_stop is None:
                        status, out, _ = pgbackrest.run(s.backup, "info", "--output=json", timeout=300)
                        if status == 0:
                            info = next((x for x in json.loads(out) if x.get("name") == b.stanza), {})
                            last_stop = max([x["timestamp"]["stop"] for x in info.get("backup", [])] or [0])
                            if last_stop:
                                # A new pod (or a new leader) shows the repository's last backup, not nothing.
                                report(s, {"stateful-flask/last-backup": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last_stop))})
                    due = last_scheduled(b.schedule, time.time())
                    if (last_stop is not None and time.time() >= retry_at
                            and (last_stop == 0 or (due is not None and last_stop < due))):
                        log("backup: full backup (%s)" % ("the repository has none" if last_stop == 0 else "scheduled"))
                        started = time.time()
                        status, out, err = pgbackrest.run(s.backup, "backup", "--type=full", timeout=6 * 3600)
                        if status == 0:
                            last_stop = time.time()
                            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last_stop))
                            log("backup: full backup done in %.0f s" % (last_stop - started))
                            report(s, {"stateful-flask/last-backup": stamp})
                        elif status == pgbackrest.LOCK_HELD:
                            # Another pgBackRest command holds the stanza's lock (post-bootstrap's stanza-create, a
                            # full-backup run by hand): not a failure; the next loop tries again.
                            log("backup: another pgBackRest command holds the lock (%s); trying again in %d s" % (pgbackrest.error_line(out, err), interval))
                        else:
                            message = "full backup failed (exit %d): %s; next attempt in 10 minutes" % (status, pgbackrest.error_line(out, err))
                            retry_at = time.time() + 600
                            log("backup: ERROR %s" % message)
                            warn({}, "BackupFailed", message)
                conflicts_seen = report_archive_conflicts(s, conflicts_seen)
                a = archiver(s)
                if a["last_failed_time"] and (a["last_archived_time"] or 0) < a["last_failed_time"]:
                    failing_since = failing_since or a["last_failed_time"]
                    message = ("WAL archiving has failed since %s (%s; %d failures): the WAL is kept in pg_wal until the repository "
                               "takes it, pg_wal holds %d MB and grows until the volume is full" % (
                                   time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(failing_since)), a["last_failed_wal"], a["failed"],
                                   a["pg_wal_bytes"] // 1048576))
                    log("backup: ERROR %s" % message)
                    warn({"stateful-flask/archive": "failing since %s" % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(failing_since))},
                         "WALArchivingFailing", message)
                else:
                    if failing_since:
                        log("backup: WAL archiving works again (last archived %s)" % a["last_archived_wal"])
                    failing_since = None
                    report(s, {"stateful-flask/archive": "ok, last %s" % (a["last_archived_wal"] or "none yet")})
            last_error = None
        except Exception as e:  # noqa: BLE001 -- the agent outlives every error; each is logged, once
            if str(e) != last_error:
                log("backup: %s" % e)
            last_error = str(e)
        time.sleep(interval)


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    try:
        cmd = argv[1]
        s = load()
        if cmd == "config":
            json.dump(patroni_config(s), sys.stdout, indent=1, sort_keys=True)
        elif cmd == "dynamic-config":
            json.dump(cluster_settings.dynamic_config(s), sys.stdout, indent=1, sort_keys=True)
        elif cmd == "check-dcs":
            kube.check_dcs(s, int(argv[2]) if len(argv) > 2 else 60)
        elif cmd == "apply-dynamic-config":
            return cluster_settings.apply_dynamic_config(s, int(argv[2]) if len(argv) > 2 else 600)
        elif cmd == "env":
            for name, key in (("APP_USER", "app_user"), ("APP_DATABASE", "app_database"), ("REPLICATION_USER", "replication_user"),
                              ("PGPORT", "pgport"), ("PG_BIN", "bin_dir"), ("RUN_DIR", "run_dir")):
                sys.stdout.write("export %s=%s\n" % (name, shlex.quote(str(getattr(s, key)))))
        elif cmd == "pgbackrest-conf":
            pgbackrest.write_config(s)
        elif cmd == "restore":
            restore(s)

        elif cmd == "backup-agent":
            if s.backup:
                backup_agent(s)
        elif cmd == "backup-status":
            if not s.backup:
                raise ConfigError("no backups configured (BACKUP_S3_BUCKET is unset): this database has no backup")
            json.dump(backup_status(s), sys.stdout, indent=1, default=str)
            sys.stdout.write("\n")
        elif cmd == "full-backup":
            if not s.backup:
                raise ConfigError("no backups configured (BACKUP_S3_BUCKET is unset): this database has no backup")
            if patroni_api.get(s, "/patroni").get("role") != "master":
                raise ConfigError("%s is not the leader; run full-backup in the leader's pod (label role=master)" % s.name)
            status, out, err = pgbackrest.run(s.backup, "backup", "--type=full", timeout=6 * 3600)
            sys.stderr.write(out + err)
            return 0 if status == 0 else 1
        elif cmd == "stanza-create":
            status, out, err = pgbackrest.run(s.backup, "stanza-create", timeout=600)
            sys.stderr.write(out + err)
            return 0 if status == 0 else 1
        elif cmd == "check-archive":
            b = s.backup
            check_archive(s, argv[2] if len(argv) > 2 else b and (b.restore_from or b.path), b and b.restore_target)
        elif cmd == "pre-stop":
            # Within the pod's 120 s grace period: up to 50 s for a replica, up to 45 s for the switchover, then
            # Patroni's fast shutdown.
            switchover.pre_stop(s, 45)
        elif cmd == "sync-guard":
            if s.synchronous_mode != "off":
                sync_guard.sync_guard(s)
        elif cmd == "wait-leader":
            adoption.wait_leader(s)
        else:
            sys.stderr.write("unknown command %r\n%s" % (cmd, __doc__))
            return 2
    except ConfigError as e:
        log("FATAL: %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
