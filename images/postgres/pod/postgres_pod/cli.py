"""The command line behind pod.py: settings loaded once, then one command. A ConfigError ends it with
`FATAL: <message>` on stderr and exit status 1; no command or an unknown one prints USAGE, exit status 2."""
import json
import shlex
import sys
from typing import Any, Callable, Optional

from . import adoption, archive_check, backup_agent, bootstrap_check, cluster_settings, kube, pgbackrest, switchover, sync_guard
from .errors import ConfigError
from .log import log
from .patroni_config import patroni_config
from .settings import Settings, load

USAGE = """Helpers of the Postgres pod's entrypoint (entrypoint.sh), in Python because Patroni already brings it.

    pod.py config                 print Patroni's configuration (JSON, which Patroni reads as YAML) from the environment
    pod.py dynamic-config         print the cluster-wide settings that live in the DCS (what `config` bootstraps with)
    pod.py check-dcs              fail with a clear message unless the Kubernetes API answers and allows what Patroni needs
    pod.py apply-dynamic-config   once the local Patroni answers, make the DCS settings equal `dynamic-config`
    pod.py wait-leader            block until the cluster has a leader other than this member and this member runs
    pod.py pre-stop               the pod's preStop hook: a leader with a healthy replica hands leadership over first
    pod.py sync-guard             on the leader: un-stick commits that wait for a synchronous standby that is gone
    pod.py pgbackrest-conf        write pgBackRest's configuration (RUN_DIR, mode 600)
    pod.py stanza-create          create the pgBackRest stanza (post-bootstrap.sh, on a new cluster)
    pod.py backup-agent           on the leader: the stanza, the first and the scheduled backups, the archiver's state
    pod.py backup-status          the repository's backups and the archiver, as JSON
    pod.py full-backup            on the leader: a full backup now (what the agent does on the schedule)
    pod.py check-bootstrap        on an empty volume: refuse a new cluster while the DCS records none but the repository holds one
    pod.py check-archive [PATH]   fail unless the repository can restore without a hole in its WAL archive
    pod.py restore                Patroni's custom bootstrap: PGDATA from the backup (RESTORE_FROM_PATH)
    pod.py env                    print `export NAME=value` lines of the settings the SQL scripts read (defaults applied)

Environment: see README.md next to this file. Every error names the variable, its value and what is allowed.
"""

# The settings the shell scripts read (entrypoint.sh evaluates `pod.py env`), defaults applied.
SHELL_SETTINGS = (("APP_USER", "app_user"), ("APP_DATABASE", "app_database"), ("REPLICATION_USER", "replication_user"),
                  ("PGPORT", "pgport"), ("PG_BIN", "bin_dir"), ("RUN_DIR", "run_dir"))


def print_json(value: Any, **options: Any) -> None:
    json.dump(value, sys.stdout, indent=1, **options)


def shell_exports(s: Settings, args: list[str]) -> None:
    for name, key in SHELL_SETTINGS:
        sys.stdout.write(f"export {name}={shlex.quote(str(getattr(s, key)))}\n")


def backup_status(s: Settings, args: list[str]) -> None:
    print_json(backup_agent.backup_status(s), default=str)
    sys.stdout.write("\n")


def check_archive(s: Settings, args: list[str]) -> None:
    # The path given, else the restore's source, else this cluster's repository.
    b = s.backup
    path = args[0] if args else (b.restore_from or b.path) if b else None
    archive_check.check_archive(s, path, b.restore_target if b else None)


def backup_agent_if_configured(s: Settings, args: list[str]) -> None:
    if s.backup:
        backup_agent.backup_agent(s)


def sync_guard_unless_off(s: Settings, args: list[str]) -> None:
    if s.synchronous_mode != "off":
        sync_guard.sync_guard(s)


# Each command gets the settings and the arguments after its name; it returns the exit status (None: 0).
COMMANDS: dict[str, Callable[[Settings, list[str]], Optional[int]]] = {
    "config": lambda s, args: print_json(patroni_config(s), sort_keys=True),
    "dynamic-config": lambda s, args: print_json(cluster_settings.dynamic_config(s), sort_keys=True),
    "check-dcs": lambda s, args: kube.check_dcs(s, int(args[0]) if args else 60),
    "apply-dynamic-config": lambda s, args: cluster_settings.apply_dynamic_config(s, int(args[0]) if args else 600),
    "env": shell_exports,
    "pgbackrest-conf": lambda s, args: pgbackrest.write_config(s),
    "restore": lambda s, args: archive_check.restore(s),
    "backup-agent": backup_agent_if_configured,
    "backup-status": backup_status,
    "full-backup": lambda s, args: backup_agent.full_backup(s),
    "stanza-create": lambda s, args: backup_agent.stanza_create(s),
    "check-archive": check_archive,
    "check-bootstrap": lambda s, args: bootstrap_check.check_bootstrap(s),
    # Within the pod's 120 s grace period: up to 50 s for a replica, up to 45 s for the switchover, then Patroni's
    # fast shutdown.
    "pre-stop": lambda s, args: switchover.pre_stop(s, 45),
    "sync-guard": sync_guard_unless_off,
    "wait-leader": lambda s, args: adoption.wait_leader(s),
}


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        sys.stderr.write(USAGE)
        return 2
    try:
        cmd = argv[1]
        s = load()
        command = COMMANDS.get(cmd)
        if command is None:
            sys.stderr.write(f"unknown command {cmd!r}\n{USAGE}")
            return 2
        return command(s, argv[2:]) or 0
    except ConfigError as e:
        log(f"FATAL: {e}")
        return 1
