"""The backup agent (`pod.py backup-agent`), and the backup commands run by hand (`backup-status`, `full-backup`).

The agent runs in every pod and acts on the leader only: it creates the stanza (the repository's record of this
cluster), takes a full backup at once when the repository has none and then on BACKUP_SCHEDULE, and watches the
archiver. The state goes on the pod (annotations stateful-flask/last-backup, stateful-flask/archive), failures also
as Warning events, and so does each segment archive_push.py left out of the archive (DivergentWALNotArchived) and a
last full backup older than the schedule allows (FullBackupOverdue).
"""
import json
import os
import sys
import time
import urllib.error
from typing import Any, Optional

from . import kube, local_db, patroni_api, pgbackrest, timestamps
from .log import log
from .schedule import expected_full_backup, last_firing, next_firing, overdue
from .environment import Environment
from .errors import ConfigError
from .settings import BackupSettings, Settings

NO_BACKUPS = "no backups configured (BACKUP_S3_BUCKET is unset): this database has no backup"
# How long a full backup may take: the agent's timeout for one, and how long after the schedule fired one may end
# before the last full backup counts as overdue.
FULL_BACKUP_TIMEOUT = 6 * 3600


def last_full(info: dict[str, Any]) -> Optional[float]:
    """When the newest full backup in the stanza's `pgbackrest info` ended (epoch seconds); None when it has none."""
    return max((x["timestamp"]["stop"] for x in info.get("backup", []) if x.get("type") == "full"), default=None)


def schedule_status(schedule: str, last: Optional[float], now: float) -> dict[str, Any]:
    """What backup-status says of the schedule: its firings, the last full backup, and why that is overdue, if it is."""
    return {"schedule": schedule, "last_full_backup": timestamps.utc(last) if last is not None else None,
            "last_firing": timestamps.utc(last_firing(schedule, now)),
            "expected_latest_firing": timestamps.utc(expected_full_backup(schedule, now, FULL_BACKUP_TIMEOUT)),
            "next_firing": timestamps.utc(next_firing(schedule, now)),
            "overdue": overdue(schedule, last, now, FULL_BACKUP_TIMEOUT)}


def report(s: Settings, annotations: dict[str, str], event: Optional[tuple[str, str]] = None) -> None:
    """The backup state on this member's pod (annotations), and a Warning event (reason, message) when given."""
    try:
        kube.request("PATCH", f"/api/v1/namespaces/{s.namespace}/pods/{s.name}", {"metadata": {"annotations": annotations}})
        if event:
            kube.warning_event(s, *event, component="stateful-flask-backup")
    except (urllib.error.URLError, OSError, ValueError, ConfigError) as e:
        log(f"could not record the backup state on the pod: {e}")


def report_archive_conflicts(s: Settings, seen: int) -> int:
    """A Warning event for each segment archive_push.py left out since the `seen` first lines of
    RUN_DIR/archive-conflicts; returns the lines now seen."""
    path = os.path.join(s.run_dir, "archive-conflicts")
    if not os.path.exists(path):
        return seen
    with open(path) as f:
        lines = f.read().splitlines()
    for line in lines[seen:]:
        message = json.loads(line)["message"]
        report(s, {}, ("DivergentWALNotArchived", message))
    return len(lines)


def archiver(s: Settings) -> dict[str, Any]:
    """pg_stat_archiver of the local server, and the size of pg_wal (what a failing archive makes grow)."""
    with local_db.cursor(s) as cur:
        # float8 and bigint: extract() and sum() return numeric, which psycopg2 reads as Decimal.
        cur.execute("SELECT archived_count, last_archived_wal, extract(epoch FROM last_archived_time)::float8, failed_count,"
                    " last_failed_wal, extract(epoch FROM last_failed_time)::float8,"
                    " (SELECT coalesce(sum(size), 0)::bigint FROM pg_ls_waldir()) FROM pg_stat_archiver")
        row = cur.fetchone()
        keys = ("archived", "last_archived_wal", "last_archived_time", "failed", "last_failed_wal", "last_failed_time", "pg_wal_bytes")
        return dict(zip(keys, row, strict=True))


def backup_agent(s: Settings) -> None:
    """Loops every BACKUP_AGENT_INTERVAL seconds, forever; every error is logged once and the loop goes on."""
    b = s.backup
    assert b is not None
    interval = Environment(os.environ).integer("BACKUP_AGENT_INTERVAL", 30, 1, 3600)
    stanza_ok = False
    failing_since = None
    last_stop: Optional[float] = None
    last_error = None
    retry_at = 0.0
    events: dict[str, float] = {}
    conflicts_seen = 0  # lines of RUN_DIR/archive-conflicts already reported
    overdue_logged = None

    def warn(annotations: dict[str, str], reason: str, message: str) -> None:
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
                    status, out, err = pgbackrest.run(b, "stanza-create", timeout=600)
                    if status == 0:
                        stanza_ok = True
                        log(f"backup: stanza {b.stanza} ready in {b.path}")
                    else:
                        message = f"stanza-create failed (exit {status}): {pgbackrest.error_line(out, err)}"
                        log(f"backup: ERROR {message}")
                        warn({"stateful-flask/archive": f"failing: {message}"}, "BackupRepositoryUnavailable", message)
                if stanza_ok:
                    if last_stop is None:
                        status, out, _ = pgbackrest.run(b, "info", "--output=json", timeout=300)
                        if status == 0:
                            info: dict[str, Any] = next((x for x in json.loads(out) if x.get("name") == b.stanza), {})
                            last_stop = last_full(info) or 0
                            if last_stop:
                                # A new pod (or a new leader) shows the repository's last backup, not nothing.
                                report(s, {"stateful-flask/last-backup": timestamps.utc(last_stop)})
                    if (last_stop is not None and time.time() >= retry_at
                            and (last_stop == 0 or last_stop < last_firing(b.schedule, time.time()))):
                        log(f"backup: full backup ({'the repository has none' if last_stop == 0 else 'scheduled'})")
                        started = time.time()
                        status, out, err = pgbackrest.run(b, "backup", "--type=full", timeout=FULL_BACKUP_TIMEOUT)
                        if status == 0:
                            last_stop = time.time()
                            log(f"backup: full backup done in {last_stop - started:.0f} s")
                            report(s, {"stateful-flask/last-backup": timestamps.utc(last_stop)})
                        elif status == pgbackrest.LOCK_HELD:
                            # Another pgBackRest command holds the stanza's lock (post-bootstrap's stanza-create, a
                            # full-backup run by hand): not a failure; the next loop tries again.
                            log(f"backup: another pgBackRest command holds the lock ({pgbackrest.error_line(out, err)}); trying again in {interval} s")
                        else:
                            message = f"full backup failed (exit {status}): {pgbackrest.error_line(out, err)}; next attempt in 10 minutes"
                            retry_at = time.time() + 600
                            log(f"backup: ERROR {message}")
                            warn({}, "BackupFailed", message)
                    # A repository without any full backup is the first backup's concern (BackupFailed when it fails).
                    late = overdue(b.schedule, last_stop, time.time(), FULL_BACKUP_TIMEOUT) if last_stop else None
                    if late:
                        if late != overdue_logged:
                            log(f"backup: WARNING {late}")
                        warn({}, "FullBackupOverdue", late)
                    overdue_logged = late
                conflicts_seen = report_archive_conflicts(s, conflicts_seen)
                a = archiver(s)
                if a["last_failed_time"] and (a["last_archived_time"] or 0) < a["last_failed_time"]:
                    failing_since = failing_since or a["last_failed_time"]
                    message = (f"WAL archiving has failed since {timestamps.utc(failing_since)} ({a['last_failed_wal']}; {a['failed']} failures): "
                               "the WAL is kept in pg_wal until the repository takes it, "
                               f"pg_wal holds {a['pg_wal_bytes'] // 1048576} MB and grows until the volume is full")
                    log(f"backup: ERROR {message}")
                    warn({"stateful-flask/archive": f"failing since {timestamps.utc(failing_since)}"}, "WALArchivingFailing", message)
                else:
                    if failing_since:
                        log(f"backup: WAL archiving works again (last archived {a['last_archived_wal']})")
                    failing_since = None
                    report(s, {"stateful-flask/archive": f"ok, last {a['last_archived_wal'] or 'none yet'}"})
            last_error = None
        except Exception as e:  # noqa: BLE001 -- the agent outlives every error; each is logged, once
            if str(e) != last_error:
                log(f"backup: {e}")
            last_error = str(e)
        time.sleep(interval)


def backup_status(s: Settings) -> dict[str, Any]:
    """What `pod.py backup-status` prints: the repository's backups, the schedule (and whether the last full backup is
    overdue), and this member's archiver."""
    b = s.backup
    if not b:
        raise ConfigError(NO_BACKUPS)
    out: dict[str, Any] = {"stanza": b.stanza, "path": b.path}
    status, text, err = pgbackrest.run(b, "info", "--output=json", timeout=120)
    if status == 0:
        info: dict[str, Any] = next((x for x in json.loads(text) if x.get("name") == b.stanza), {})
        out["repository"] = (info.get("status") or {}).get("message")
        out["backups"] = [{"label": x["label"], "type": x["type"], "stop": timestamps.utc(x["timestamp"]["stop"]),
                           "wal": [x["archive"]["start"], x["archive"]["stop"]]} for x in info.get("backup", [])]
        out["schedule"] = schedule_status(b.schedule, last_full(info), time.time())
    else:
        out["repository"] = f"unreadable: {pgbackrest.error_line(text, err)}"
    try:
        out["archiver"] = archiver(s)
    except Exception as e:  # noqa: BLE001 -- a replica or a stopped server has no archiver to show
        out["archiver"] = f"unavailable: {e}"
    return out


def full_backup(s: Settings) -> int:
    """`pod.py full-backup`, in the leader's pod: what the agent does on the schedule, now; pgBackRest's output on
    stderr, its success as the exit status."""
    if not s.backup:
        raise ConfigError(NO_BACKUPS)
    if patroni_api.get(s, "/patroni").get("role") != "master":
        raise ConfigError(f"{s.name} is not the leader; run full-backup in the leader's pod (label role=master)")
    return run_to_stderr(s.backup, "backup", "--type=full", timeout=FULL_BACKUP_TIMEOUT)


def stanza_create(s: Settings) -> int:
    """`pod.py stanza-create` (post-bootstrap.sh, with backups only): the stanza of a new cluster before it archives."""
    assert s.backup is not None, "stanza-create needs BACKUP_S3_BUCKET"
    return run_to_stderr(s.backup, "stanza-create", timeout=600)


def run_to_stderr(b: BackupSettings, *args: str, timeout: int) -> int:
    """pgbackrest with its output on stderr; 0 when it succeeded, else 1."""
    status, out, err = pgbackrest.run(b, *args, timeout=timeout)
    sys.stderr.write(out + err)
    return 0 if status == 0 else 1
