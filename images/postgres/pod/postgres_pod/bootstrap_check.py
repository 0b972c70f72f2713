"""The check before a new cluster is made (`pod.py check-bootstrap`, run by entrypoint.sh on an empty volume).

A new cluster (initdb, or a restore from RESTORE_FROM_PATH) is made when the volume is empty and Patroni's DCS has
never been initialised (the ConfigMap `<scope>-config` has no `initialize` annotation). If this cluster's own
repository (BACKUP_PATH) already holds a stanza at that moment, the volumes and the DCS were lost after a cluster
archived there: the stack's own history, or another cluster's that shares the path. Either way a new cluster there
is wrong: initdb makes a new system id, which pgBackRest refuses to archive into that stanza, on every segment, while
pg_wal fills the volume; and a restore from RESTORE_FROM_PATH would bring back that source's older state, silently
dropping every write this stack archived since (docs/backups.md, "After a total loss"). The pod refuses instead, with
an error in its log and a Warning event that name what the repository holds and the commands to choose.
"""
import json
import re
import urllib.error
from dataclasses import dataclass
from typing import Any, Literal, Optional

from . import kube, pgbackrest, timestamps
from .errors import ConfigError
from .log import log
from .settings import BackupSettings, Settings

# pgBackRest's stanza status codes (`info --output=json`): 1 is a path with nothing in it, 99 "other" (with the
# repository's own error: unreachable, refused, ...).
MISSING_STANZA_PATH = 1
OTHER = 99
# The repository error pgBackRest reports inside its JSON, e.g. "[HostConnectError] unable to connect to ...".
REPOSITORY_ERROR = re.compile(r"^\[\w+\]")


@dataclass(frozen=True)
class Repository:
    """What `pgbackrest info` shows of one stanza in one repository."""

    status_code: int
    status: str
    # The repository could not be read (its error); None when it was.
    error: Optional[str]
    system_ids: tuple[int, ...]
    # (label, stop time in epoch seconds), oldest first.
    backups: tuple[tuple[str, int], ...]
    archive_max: Optional[str]

    @property
    def empty(self) -> bool:
        return self.error is None and self.status_code == MISSING_STANZA_PATH


@dataclass(frozen=True)
class Verdict:
    """`go`: make the new cluster; `warn`: make it, logging `message`; `refuse`: stop with `message`."""

    action: Literal["go", "warn", "refuse"]
    message: str = ""


def repository(info: list[dict[str, Any]], stanza: str) -> Repository:
    """The stanza's entry of `pgbackrest info --output=json`."""
    entry = next((x for x in info if x.get("name") == stanza), None)
    if entry is None:
        return Repository(OTHER, "no entry for the stanza", f"pgbackrest info listed no stanza {stanza}", (), (), None)
    code = int(entry.get("status", {}).get("code", OTHER))
    repo_messages = [r.get("status", {}).get("message", "") for r in entry.get("repo", [])]
    errors = [m for m in repo_messages if REPOSITORY_ERROR.match(m)]
    # An unreadable repository shows as code 99 with nothing found; code 99 with a system id found is read content.
    error = "; ".join(errors) if code == OTHER and errors and not entry.get("db") else None
    archive_max = max((a["max"] for a in entry.get("archive", []) if a.get("max")), default=None)
    return Repository(
        status_code=code,
        status=entry.get("status", {}).get("message", ""),
        error=error,
        system_ids=tuple(int(d["system-id"]) for d in entry.get("db", [])),
        backups=tuple((b["label"], int(b["timestamp"]["stop"])) for b in entry.get("backup", [])),
        archive_max=archive_max,
    )


def next_path(path: str) -> str:
    """A path beside `path` for a new repository: /stateful-flask/dev -> /stateful-flask/dev-2, dev-2 -> dev-3."""
    m = re.fullmatch(r"(.*)-(\d+)", path.rstrip("/"))
    return f"{m.group(1)}-{int(m.group(2)) + 1}" if m else f"{path.rstrip('/')}-2"


def found(repo: Repository) -> str:
    """What the repository holds, in words."""
    parts = [f"system id {', '.join(map(str, repo.system_ids))}" if repo.system_ids else f"status {repo.status!r}"]
    if repo.backups:
        label, stop = repo.backups[-1]
        parts.append(f"{len(repo.backups)} backup{'s' if len(repo.backups) > 1 else ''}, the newest {label} (ended {timestamps.utc(stop)})")
    else:
        parts.append("no backup")
    parts.append(f"WAL archived up to {repo.archive_max}" if repo.archive_max else "no archived WAL")
    return ", ".join(parts)


def decide(b: BackupSettings, scope: str, initialized: bool, repo: Optional[Repository]) -> Verdict:
    """Whether an empty member may make a new cluster. `initialized`: the DCS records one (then it joins or waits for
    it, and the repository is not read: `repo` may be None); `repo`: this cluster's repository (BACKUP_PATH)."""
    if initialized:
        return Verdict("go")
    assert repo is not None
    where = f"s3://{b.bucket}{b.path}"
    if repo.error is not None:
        if b.restore_from:
            return Verdict("refuse", f"cannot read this cluster's repository {where} ({repo.error}); a restore from RESTORE_FROM_PATH="
                                     f"{b.restore_from} starts only once this repository is known to hold no newer state of the cluster. "
                                     "Check the store and the key; the pod tries again when it restarts")
        return Verdict("warn", f"cannot read this cluster's repository {where} ({repo.error}) to check that it holds no other cluster; "
                               "initialising a new one (the backup agent reports the repository's error until it is fixed)")
    if repo.empty:
        return Verdict("go")
    new = next_path(b.path)
    if b.restore_from:
        why = (f"RESTORE_FROM_PATH={b.restore_from} is set, but this stack's own repository is newer: the cluster restored from it "
               "archived there since, so a second restore would silently go back in time and drop every write made after the first")
    else:
        why = ("A new database gets a new system id, which pgBackRest refuses to archive into this stanza: archiving would fail on "
               "every segment while pg_wal fills the volume")
    choices = []
    if repo.backups:
        choices.append(f"bring back this repository's latest state: pulumi config set restoreFrom {b.path} && "
                       f"pulumi config set backupPath {new} && {'pulumi config rm restoreTargetTime && ' if b.restore_target else ''}pulumi up")
    choices.append(f"start an empty database and leave this repository as it is: {'pulumi config rm restoreFrom && ' if b.restore_from else ''}"
                   f"pulumi config set backupPath {new} && pulumi up")
    if b.restore_from:
        choices.append(f"restore {b.restore_from} again on purpose, without what this stack archived since: "
                       f"pulumi config set backupPath {new} && pulumi up")
    listed = "; ".join(f"({i}) {c}" for i, c in enumerate(choices, 1))
    return Verdict("refuse", f"the volume is empty and the cluster was never initialised (no initialize annotation on ConfigMap {scope}-config), "
                             f"but this cluster's repository {where} already holds stanza {b.stanza}: {found(repo)}. {why}. "
                             f"Nothing was initialised and nothing was written. Choose: {listed}. The repository is never deleted")


def dcs_initialized(s: Settings) -> bool:
    """Whether Patroni's DCS records a cluster: the `initialize` annotation of the ConfigMap `<scope>-config` (set,
    even empty, from the moment a member starts to bootstrap)."""
    try:
        cm = kube.request("GET", f"/api/v1/namespaces/{s.namespace}/configmaps/{s.scope}-config")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise ConfigError(f"cannot read the ConfigMap {s.scope}-config in namespace {s.namespace} (HTTP {e.code}); refusing to decide "
                          "whether a new cluster may be made") from e
    return "initialize" in ((cm.get("metadata") or {}).get("annotations") or {})


def read_repository(b: BackupSettings) -> Repository:
    """This cluster's repository, through `pgbackrest info`."""
    status, out, err = pgbackrest.run(b, "info", "--output=json", timeout=300)
    if status != 0:
        return Repository(OTHER, "", f"pgbackrest info exited {status}: {pgbackrest.error_line(out, err)}", (), (), None)
    return repository(json.loads(out), b.stanza)


def check_bootstrap(s: Settings) -> None:
    """`pod.py check-bootstrap` (entrypoint.sh, an empty volume, backups on): raises ConfigError, with a Warning event,
    when a new cluster must not be made."""
    b = s.backup
    if b is None or dcs_initialized(s):
        return
    repo = read_repository(b)
    # A member that started to bootstrap meanwhile takes `initialize` before it creates its stanza: read after the
    # repository, an absent annotation means the stanza was there before any member of this DCS bootstrapped.
    verdict = decide(b, s.scope, dcs_initialized(s), repo)
    if verdict.action == "warn":
        log(f"WARNING: {verdict.message}")
    elif verdict.action == "refuse":
        try:
            kube.warning_event(s, "NewClusterRefused", verdict.message, component="stateful-flask-bootstrap")
        except (urllib.error.URLError, OSError, ValueError, ConfigError) as e:
            log(f"could not record the refusal as an event: {e}")
        raise ConfigError(verdict.message)
