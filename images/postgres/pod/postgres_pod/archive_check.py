"""The archive check and the restore: a repository must hold a backup and every WAL segment after it, undamaged.

pgBackRest and PostgreSQL do not check this: a missing or damaged segment ends recovery early and the database is
promoted without the rows after it (docs/backups.md, "Failure modes"). `pod.py restore` (Patroni's bootstrap with
RESTORE_FROM_PATH) and `pod.py check-archive [PATH]` refuse such a repository with an error naming the segment.
"""
import json
import os
import re
import sys
from typing import Any, Optional

from . import pgbackrest, timestamps
from .log import log
from .errors import ConfigError
from .settings import Settings

# A WAL segment's name, or the start of a file named after one in the repository (name-checksum.compression).
WAL_NAME = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})")


def wal_index(name: str) -> tuple[int, int]:
    """(timeline, position) of a WAL segment file name; 16 MB segments: 256 per log id."""
    m = WAL_NAME.match(name)
    if not m:
        raise ValueError(f"{name!r} is not a WAL segment name")
    return int(m.group(1), 16), int(m.group(2), 16) * 256 + int(m.group(3), 16)


def choose_backup(backups: list[dict[str, Any]], path: Optional[str], target: Optional[str]) -> dict[str, Any]:
    """The newest backup of pgBackRest's `info` list (oldest first), or the newest that ended before `target`."""
    if not target:
        return backups[-1]
    limit = timestamps.parse(target).timestamp()
    usable = [x for x in backups if x["timestamp"]["stop"] < limit]
    if not usable:
        raise ConfigError(f"RESTORE_TARGET_TIME={target} is before the oldest backup in {path} "
                          f"(it ended at {timestamps.utc(backups[0]['timestamp']['stop'])})")
    return usable[-1]


def archived_positions(names: list[str]) -> dict[int, set[int]]:
    """Position -> timelines that archived a segment there, from the repository's archive listing (history files
    left out; a .partial counts)."""
    have: dict[int, set[int]] = {}
    for name in names:
        base = name.rsplit("/", 1)[-1]
        if WAL_NAME.match(base) and len(base) >= 24 and not base[24:].startswith(".history"):
            tli, position = wal_index(base)
            have.setdefault(position, set()).add(tli)
    return have


def first_hole(have: dict[int, set[int]], start_segment: str) -> Optional[tuple[str, int, int]]:
    """The first segment missing between the backup's first (`start_segment`) and the newest archived one, as
    (its name, how many more are missing, segments from the start to the newest), or None when there is no hole."""
    start = wal_index(start_segment)[1]
    newest = max(have) if have else start
    missing = [i for i in range(start, newest + 1) if i not in have]
    if not missing:
        return None
    first = missing[0]
    # The missing file's name carries the timeline its predecessor was written on.
    tli = max(have.get(first - 1) or {wal_index(start_segment)[0]})
    return f"{tli:08X}{first // 256:08X}{first % 256:08X}", len(missing) - 1, newest - start + 1


def damaged_files(verify_output: str) -> list[str]:
    """The files `pgbackrest verify` found invalid, a WAL segment by its name."""
    damaged = []
    for name, reason in re.findall(r"invalid result (\S+): (.*)", verify_output):
        base = name.rsplit("/", 1)[-1]
        damaged.append(f"WAL segment {base[:24]} ({reason.strip()})" if WAL_NAME.match(base) else f"{name} ({reason.strip()})")
    return damaged


def check_archive(s: Settings, path: Optional[str], target: Optional[str] = None) -> str:
    """The repository at `path` (None: BACKUP_PATH) can restore without a silent hole: a backup to start from
    (finished before `target` when one is given), and every WAL segment from that backup's start to the newest
    archived one, each file's checksum verified. Returns the backup's label, or raises ConfigError."""
    b = s.backup
    assert b is not None
    status, out, err = pgbackrest.run(b, "info", "--output=json", path=path, timeout=300)
    if status != 0:
        raise ConfigError(f"cannot read the repository {path}: {pgbackrest.error_line(out, err)}")
    stanza = next((x for x in json.loads(out) if x.get("name") == b.stanza), None)
    backups = (stanza or {}).get("backup", [])
    if not backups:
        raise ConfigError(f"the repository {path} holds no backup of stanza {b.stanza}; nothing to restore from")
    backup = choose_backup(backups, path, target)
    status, out, err = pgbackrest.run(b, "repo-ls", "--recurse", "--output=json", f"archive/{b.stanza}", path=path, timeout=300)
    if status != 0:
        raise ConfigError(f"cannot list the WAL archive in {path}: {(err or out).strip()}")
    have = archived_positions(json.loads(out))
    hole = first_hole(have, backup["archive"]["start"])
    if hole:
        raise ConfigError(f"the WAL archive in {path} has a hole: segment {hole[0]} and {hole[1]} more between backup {backup['label']} and the "
                          "newest archived segment are missing. Restoring would end at the hole and promote a database without the rows after "
                          "it; refusing. A deleted segment may still be in the bucket as a noncurrent version (versioning keeps them for "
                          "backupRetentionDays): bring it back, then restart this pod")
    # Every file's checksum: a damaged segment would end recovery exactly like a missing one.
    status, out, err = pgbackrest.run(b, "verify", path=path, timeout=6 * 3600)
    damaged = damaged_files(out + err)
    if status != 0 or damaged or re.search(r"status: error", out + err):
        detail = "; ".join(damaged) or f"pgbackrest verify exited {status}:\n{(out + err).strip()}"
        raise ConfigError(f"the repository {path} has damaged files: {detail}. Restoring from it would end recovery at the damage and "
                          "promote a database without the rows after it; refusing. Restore to a time before the damage, or repair the file")
    start = wal_index(backup["archive"]["start"])[1]
    newest = max(have) if have else start
    log(f"archive check: backup {backup['label']}, {newest - start + 1} WAL segments from its start to the newest, no hole, every file verified")
    return backup["label"]


def restore(s: Settings) -> None:
    """`pod.py restore`, Patroni's custom bootstrap: PGDATA from the backup, after the archive check; Patroni then
    recovers it with the recovery settings of patroni_config.py."""
    b = s.backup
    assert b is not None
    label = check_archive(s, b.restore_from, b.restore_target)
    pgdata = s.pgdata
    os.makedirs(pgdata, mode=0o700, exist_ok=True)
    if os.listdir(pgdata):
        raise ConfigError(f"{pgdata} is not empty; a restore never writes over a data directory")
    log(f"restoring backup {label} from {b.restore_from}{f' to {b.restore_target}' if b.restore_target else ' to the end of the archive'}")
    status, out, err = pgbackrest.run(b, "restore", f"--pg1-path={pgdata}", f"--set={label}", "--type=default", path=b.restore_from)
    sys.stderr.write(out + err)
    if status != 0:
        raise ConfigError(f"pgbackrest restore failed (exit {status}); see above")
    # pgBackRest writes its own recovery settings into postgresql.auto.conf, which would override the ones
    # Patroni writes (restore_command from the source path, the target time, promote): they go.
    auto = os.path.join(pgdata, "postgresql.auto.conf")
    if os.path.exists(auto):
        with open(auto) as f:
            keep = [line for line in f if not re.match(r"\s*(restore_command|recovery_target\w*)\s*=", line)]
        with open(auto, "w") as f:
            f.writelines(keep)
